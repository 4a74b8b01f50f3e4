//! The batch job's reading and cleaning as a DataFusion plan that Ballista distributes.
//!
//! The job lists the objects to ingest and groups them into units (`pinpipe_batch::read::units_of`);
//! [`RawObjects`] is a table whose scan is a [`CleanExec`] over an in-memory scan with one
//! partition per unit (one row: the unit's number). Ballista's scheduler plans it and sends each
//! task its share of that scan (it restricts the scans it knows to a task's partitions); the
//! executor fetches the unit's objects from the shared store (credentials from its own
//! environment), cleans them with the same code as a run in one process
//! (`pinpipe_batch::read::read_unit`: the shared `pinpipe_transform` rules, fingerprints, the
//! unit's own duplicates dropped), leaves the cleaned unit as a [`crate::wire`] Arrow IPC object
//! in the warehouse's staging area and returns one row saying where. A task that is re-run (an
//! executor lost) writes the same object again.
//!
//! [`Codec`] carries both nodes over the wire (JSON of [`Task`] behind a tag) and hands every
//! other node to Ballista's own codecs.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use async_trait::async_trait;
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::array::{RecordBatch, StringArray, UInt32Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::TableReference;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, TableType};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream,
};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStoreExt};
use pinpipe_batch::read::{self, Busy, Planned, ReadProgress, RunSets};
use pinpipe_model::Kind;
use pinpipe_store::StoreConfig;
use pinpipe_store::layout::Format;
use serde::{Deserialize, Serialize};

use crate::wire;

/// What a cluster reads for one topic: the store, the kind of record, the units of objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The input store as configured (no credentials: executors take theirs from their
    /// environment).
    pub store: StoreConfig,
    /// The kind of record.
    pub kind: Kind,
    /// Object requests in flight per unit.
    pub requests: usize,
    /// Bounds an executor's cache of raw fingerprints, as in a run in one process.
    pub memory_limit: u64,
    /// The units, each a list of objects in key order.
    pub units: Vec<Vec<Object>>,
    /// Where executors leave each cleaned unit for the job (the warehouse, as configured).
    pub stage: StoreConfig,
    /// Key prefix of this task's units in `stage` (one object per unit, [`unit_key`]).
    pub stage_prefix: String,
}

/// The key of unit `unit`'s cleaned output under `prefix` (relative to the stage store's root).
pub fn unit_key(prefix: &str, unit: u32) -> String {
    format!("{prefix}/unit-{unit:06}.arrow")
}

/// The schema of what a task returns through Ballista: one row per unit, saying where its
/// cleaned output was left.
pub fn result_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("unit", DataType::UInt32, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("bytes", DataType::UInt64, false),
    ]))
}

/// An object of a unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Object {
    /// Its full key in the store.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its raw partition.
    pub partition: u32,
    /// Offset of its first record.
    pub start: u64,
    /// How it is encoded.
    pub format: Format,
}

impl Object {
    /// The object of a planned read.
    pub fn of(p: &Planned) -> Object {
        Object {
            key: p.meta.location.to_string(),
            size: p.meta.size,
            partition: p.partition,
            start: p.start,
            format: p.format,
        }
    }

    fn planned(&self) -> Planned {
        Planned {
            partition: self.partition,
            start: self.start,
            format: self.format,
            meta: ObjectMeta {
                location: ObjectPath::from(self.key.as_str()),
                last_modified: chrono::DateTime::UNIX_EPOCH,
                size: self.size,
                e_tag: None,
                version: None,
            },
        }
    }
}

/// The raw objects of a [`Task`] as a table of cleaned units ([`result_schema`]).
#[derive(Debug)]
pub struct RawObjects {
    task: Arc<Task>,
    schema: SchemaRef,
}

impl RawObjects {
    /// The table of `task`.
    pub fn new(task: Task) -> RawObjects {
        RawObjects { task: Arc::new(task), schema: result_schema() }
    }
}

#[async_trait]
impl TableProvider for RawObjects {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(CleanExec::new(Arc::clone(&self.task), units_scan(&self.task)?, projection.cloned())?))
    }
}

/// The schema of [`CleanExec`]'s input: one row per unit, its number.
fn units_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("unit", DataType::UInt32, false)]))
}

/// The input of [`CleanExec`] for `task`: an in-memory scan with one partition per unit, each one
/// row holding the unit's number.
///
/// Ballista's scheduler restricts the scans it knows (files, memory, shuffle readers) to the
/// partitions of each task before sending a stage to an executor; a leaf it does not know is sent
/// whole, and every task would run every partition. Above this scan, a task cleans exactly the
/// units it was given.
fn units_scan(task: &Task) -> DfResult<Arc<dyn ExecutionPlan>> {
    let schema = units_schema();
    let partitions = (0..task.units.len())
        .map(|u| {
            let unit = u32::try_from(u).map_err(|_| DataFusionError::Execution("too many units".into()))?;
            let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(UInt32Array::from(vec![unit]))])?;
            Ok(vec![batch])
        })
        .collect::<DfResult<Vec<_>>>()?;
    let scan: Arc<dyn ExecutionPlan> = MemorySourceConfig::try_new_exec(&partitions, schema, None)?;
    Ok(scan)
}

/// Reads and cleans the units its input names: one unit per input partition (a task's share
/// of [`units_scan`]).
#[derive(Debug)]
pub struct CleanExec {
    task: Arc<Task>,
    input: Arc<dyn ExecutionPlan>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl CleanExec {
    fn new(task: Arc<Task>, input: Arc<dyn ExecutionPlan>, projection: Option<Vec<usize>>) -> DfResult<CleanExec> {
        let full = result_schema();
        let schema = match &projection {
            Some(p) => Arc::new(full.project(p)?),
            None => full,
        };
        let partitions = input.properties().output_partitioning().partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(CleanExec { task, input, projection, schema, properties: Arc::new(properties) })
    }
}

impl DisplayAs for CleanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "PinpipeCleanExec: {:?}, {} units of objects", self.task.kind, self.task.units.len())
    }
}

impl ExecutionPlan for CleanExec {
    fn name(&self) -> &'static str {
        "PinpipeCleanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children)
            .map_err(|c| DataFusionError::Internal(format!("PinpipeCleanExec has one input, not {}", c.len())))?;
        Ok(Arc::new(CleanExec::new(Arc::clone(&self.task), input, self.projection.clone())?))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let task = Arc::clone(&self.task);
        let projection = self.projection.clone();
        let units = self.input.execute(partition, context)?;
        let batches = units
            .map(|b| -> DfResult<Vec<u32>> {
                let b = b?;
                let column = b
                    .column_by_name("unit")
                    .and_then(|c| c.as_any().downcast_ref::<UInt32Array>())
                    .ok_or_else(|| DataFusionError::Internal("PinpipeCleanExec's input has no unit column".into()))?;
                Ok(column.values().to_vec())
            })
            .map_ok(|units| futures_util::stream::iter(units).map(Ok::<u32, DataFusionError>))
            .try_flatten()
            .and_then(move |unit| {
                let (task, projection) = (Arc::clone(&task), projection.clone());
                async move {
                    let row = clean(&task, unit).await?;
                    match &projection {
                        Some(p) => row.project(p).map_err(DataFusionError::from),
                        None => Ok(row),
                    }
                }
            });
        Ok(Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&self.schema), batches)))
    }
}

/// Reads and cleans unit `unit` of `task`, leaves its [`wire`] batches in the stage store as an
/// Arrow IPC file (a task run again writes the same object), and returns where.
async fn clean(task: &Task, unit: u32) -> DfResult<RecordBatch> {
    let external = |e: Box<dyn std::error::Error + Send + Sync>| DataFusionError::External(e);
    let objects = task
        .units
        .get(unit as usize)
        .ok_or_else(|| DataFusionError::Execution(format!("unit {unit} of {} does not exist", task.units.len())))?;
    let scratch = std::env::temp_dir();
    let store = task.store.validate_or(scratch).map_err(|e| external(Box::new(e)))?;
    let store = store.open().map_err(|e| external(Box::new(e)))?;
    let sets = Arc::new(RunSets::for_memory_limit(task.memory_limit));
    let busy = Arc::new(Busy::default());
    let progress = Arc::new(ReadProgress::default());
    let planned = objects.iter().map(Object::planned).collect();
    let started = Instant::now();
    let chunk = read::read_unit(&store, task.kind, planned, task.requests, sets, progress, Arc::clone(&busy))
        .await
        .map_err(|e| external(Box::new(e)))?;
    tracing::debug!(unit, objects = objects.len(), seconds = started.elapsed().as_secs_f64(), "cleaned a unit");
    let (clean_ns, dedup_ns) = (busy.clean_ns.load(Ordering::Relaxed), busy.dedup_ns.load(Ordering::Relaxed));
    let batches = wire::encode(task.kind, unit, chunk, clean_ns, dedup_ns).map_err(|e| external(Box::new(e)))?;
    let bytes = wire::to_ipc(task.kind, &batches).map_err(|e| external(Box::new(e)))?;
    let size = bytes.len() as u64;
    let stage = task.stage.validate_or(std::env::temp_dir()).map_err(|e| external(Box::new(e)))?;
    let stage = stage.open().map_err(|e| external(Box::new(e)))?;
    let key = unit_key(&task.stage_prefix, unit);
    stage.inner.put(&stage.key(&key), bytes.into()).await.map_err(|e| external(Box::new(e)))?;
    let row = RecordBatch::try_new(
        result_schema(),
        vec![
            Arc::new(UInt32Array::from(vec![unit])),
            Arc::new(StringArray::from(vec![key])),
            Arc::new(UInt64Array::from(vec![size])),
        ],
    )?;
    Ok(row)
}

/// Tag in front of the nodes this codec encodes (Ballista's own start otherwise).
const TAG: &[u8] = b"pinpipe-clean/1\n";

/// The logical and physical codec of a pinpipe cluster: [`RawObjects`] and [`CleanExec`], and
/// everything else (Ballista's nodes, file formats, functions) through Ballista's codecs. The client, the scheduler and every executor use it.
#[derive(Debug, Default)]
pub struct Codec {
    logical: BallistaLogicalExtensionCodec,
    physical: BallistaPhysicalExtensionCodec,
}

fn encode_task(task: &Task, buf: &mut Vec<u8>) -> DfResult<()> {
    buf.extend_from_slice(TAG);
    serde_json::to_writer(buf, task).map_err(|e| DataFusionError::External(Box::new(e)))
}

fn decode_task(buf: &[u8]) -> Option<DfResult<Task>> {
    let json = buf.strip_prefix(TAG)?;
    Some(serde_json::from_slice(json).map_err(|e| DataFusionError::External(Box::new(e))))
}

impl LogicalExtensionCodec for Codec {
    fn try_decode(&self, buf: &[u8], inputs: &[LogicalPlan], ctx: &TaskContext) -> DfResult<Extension> {
        self.logical.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> DfResult<()> {
        self.logical.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn TableProvider>> {
        match decode_task(buf) {
            Some(task) => Ok(Arc::new(RawObjects::new(task?))),
            None => self.logical.try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        match node.downcast_ref::<RawObjects>() {
            Some(raw) => encode_task(&raw.task, buf),
            None => self.logical.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn datafusion::datasource::file_format::FileFormatFactory>> {
        self.logical.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn datafusion::datasource::file_format::FileFormatFactory>,
    ) -> DfResult<()> {
        self.logical.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<datafusion::logical_expr::ScalarUDF>> {
        self.logical.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &datafusion::logical_expr::ScalarUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.logical.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<datafusion::logical_expr::AggregateUDF>> {
        self.logical.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &datafusion::logical_expr::AggregateUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.logical.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<datafusion::logical_expr::WindowUDF>> {
        self.logical.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &datafusion::logical_expr::WindowUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.logical.try_encode_udwf(node, buf)
    }
}

/// What [`CleanExec`] carries on the wire: the task and the projection.
#[derive(Serialize, Deserialize)]
struct ExecWire {
    task: Task,
    projection: Option<Vec<usize>>,
}

impl PhysicalExtensionCodec for Codec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let Some(json) = buf.strip_prefix(TAG) else {
            return self.physical.try_decode(buf, inputs, ctx, converter);
        };
        let w: ExecWire = serde_json::from_slice(json).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let [input] = inputs else {
            return Err(DataFusionError::Internal(format!("PinpipeCleanExec has one input, not {}", inputs.len())));
        };
        Ok(Arc::new(CleanExec::new(Arc::new(w.task), Arc::clone(input), w.projection)?))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        let Some(exec) = node.downcast_ref::<CleanExec>() else {
            return self.physical.try_encode(node, buf, converter);
        };
        buf.extend_from_slice(TAG);
        let w = ExecWire { task: exec.task.as_ref().clone(), projection: exec.projection.clone() };
        serde_json::to_writer(buf, &w).map_err(|e| DataFusionError::External(Box::new(e)))
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<datafusion::logical_expr::ScalarUDF>> {
        self.physical.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &datafusion::logical_expr::ScalarUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.physical.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<datafusion::logical_expr::AggregateUDF>> {
        self.physical.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &datafusion::logical_expr::AggregateUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.physical.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<datafusion::logical_expr::WindowUDF>> {
        self.physical.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &datafusion::logical_expr::WindowUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.physical.try_encode_udwf(node, buf)
    }
}

/// What the codec is, for Ballista's configuration.
pub fn codec() -> Arc<Codec> {
    Arc::new(Codec::default())
}
