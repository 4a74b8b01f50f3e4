//! The batch job's reading, cleaning and writing as DataFusion plans that Ballista distributes.
//!
//! The job lists the objects to ingest and groups them into units (`pinpipe_batch::read::units_of`);
//! each topic is then two Ballista jobs of one task per unit ([`Work`]). [`Units`] is a table
//! whose scan is a [`UnitsExec`] over an in-memory scan with one partition per unit (one row: the
//! unit's number). Ballista's scheduler plans it and sends each task its share of that scan (it
//! restricts the scans it knows to a task's partitions).
//!
//! 1. [`Work::Clean`]: the executor fetches the unit's objects from the shared store
//!    (credentials from its own environment), cleans them with the same code as a run in one
//!    process (`pinpipe_batch::read::read_unit`: the shared `pinpipe_transform` rules,
//!    fingerprints, the unit's own duplicates dropped), leaves the cleaned unit as a
//!    [`crate::wire`] Arrow IPC object in the warehouse's staging area, and its keys
//!    (fingerprints, dead letters, counts) beside it, and returns one row saying where. A task
//!    that is re-run (an executor lost) writes the same objects again.
//! 2. The job reads the keys and decides which rows are new, as in one process.
//! 3. [`Work::Write`]: the executor writes the unit's kept rows as Parquet data files of the
//!    table with their fingerprint files (`pinpipe_batch::write`), and returns their Delta `add`
//!    actions; the job commits them. A task re-run writes other files, never committed.
//!
//! [`Codec`] carries both nodes over the wire (JSON of [`Work`] behind a tag) and hands every
//! other node to Ballista's own codecs.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
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
use pinpipe_batch::write::TableWriter;
use pinpipe_model::Kind;
use pinpipe_store::layout::Format;
use pinpipe_store::{Store, StoreConfig};
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

/// What executors write for one topic: the rows of each unit they cleaned that the job keeps,
/// as data files of the topic's table (with fingerprint files); the job commits them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteTask {
    /// The kind of record.
    pub kind: Kind,
    /// The warehouse, as configured: where the units are staged and the table is.
    pub stage: StoreConfig,
    /// Key prefix of the staged units ([`unit_key`]), as the clean task left them.
    pub stage_prefix: String,
    /// The table's directory in the warehouse.
    pub table: String,
    /// The units to write, each with the rows to keep.
    pub units: Vec<UnitKeep>,
}

/// A unit to write and which of its rows to keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitKeep {
    /// The unit's number.
    pub unit: u32,
    /// Its rows.
    pub rows: usize,
    /// One bit per row (the first row in the lowest bit of the first byte), in hex.
    pub keep: String,
}

impl UnitKeep {
    /// The unit `unit` keeping the rows where `keep` is true.
    pub fn new(unit: u32, keep: &[bool]) -> UnitKeep {
        let mut bytes = vec![0u8; keep.len().div_ceil(8)];
        for (i, k) in keep.iter().enumerate() {
            if *k {
                bytes[i / 8] |= 1 << (i % 8);
            }
        }
        UnitKeep { unit, rows: keep.len(), keep: bytes.iter().map(|b| format!("{b:02x}")).collect() }
    }

    /// The flags, one per row; `None` when the text is not what [`UnitKeep::new`] writes.
    pub fn flags(&self) -> Option<Vec<bool>> {
        let text = self.keep.as_bytes();
        if text.len() != self.rows.div_ceil(8) * 2 {
            return None;
        }
        let bytes = text
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some((0..self.rows).map(|i| bytes[i / 8] & (1 << (i % 8)) != 0).collect())
    }
}

/// The schema of what a write task returns: one row per unit, the files written (Delta `add`
/// actions as a JSON array), their rows and the time spent.
pub fn written_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("unit", DataType::UInt32, false),
        Field::new("adds", DataType::Utf8, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("write_ns", DataType::UInt64, false),
    ]))
}

/// A job for the cluster: one task per unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "work", rename_all = "snake_case")]
pub enum Work {
    /// Read and clean units of raw objects, and stage them.
    Clean(Task),
    /// Write the kept rows of staged units to a table.
    Write(WriteTask),
}

impl Work {
    fn units(&self) -> usize {
        match self {
            Work::Clean(t) => t.units.len(),
            Work::Write(t) => t.units.len(),
        }
    }

    fn schema(&self) -> SchemaRef {
        match self {
            Work::Clean(_) => result_schema(),
            Work::Write(_) => written_schema(),
        }
    }

    /// Does the work of the unit at `index`: one row of [`Work::schema`].
    async fn run(&self, index: u32) -> DfResult<RecordBatch> {
        match self {
            Work::Clean(t) => clean(t, index).await,
            Work::Write(t) => {
                let unit = t.units.get(index as usize).ok_or_else(|| {
                    DataFusionError::Execution(format!("unit {index} of {} does not exist", t.units.len()))
                })?;
                write(t, unit).await
            }
        }
    }
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

/// The units of a [`Work`] as a table of what each unit's task returns ([`Work::schema`]).
#[derive(Debug)]
pub struct Units {
    work: Arc<Work>,
    schema: SchemaRef,
}

impl Units {
    /// The table of `work`.
    pub fn new(work: Work) -> Units {
        let schema = work.schema();
        Units { work: Arc::new(work), schema }
    }
}

#[async_trait]
impl TableProvider for Units {
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
        Ok(Arc::new(UnitsExec::new(Arc::clone(&self.work), units_scan(&self.work)?, projection.cloned())?))
    }
}

/// The schema of [`UnitsExec`]'s input: one row per unit, its number.
fn units_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("unit", DataType::UInt32, false)]))
}

/// The input of [`UnitsExec`] for `work`: an in-memory scan with one partition per unit, each one
/// row holding the unit's number.
///
/// Ballista's scheduler restricts the scans it knows (files, memory, shuffle readers) to the
/// partitions of each task before sending a stage to an executor; a leaf it does not know is sent
/// whole, and every task would run every partition. Above this scan, a task cleans exactly the
/// units it was given.
fn units_scan(work: &Work) -> DfResult<Arc<dyn ExecutionPlan>> {
    let schema = units_schema();
    let partitions = (0..work.units())
        .map(|u| {
            let unit = u32::try_from(u).map_err(|_| DataFusionError::Execution("too many units".into()))?;
            let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(UInt32Array::from(vec![unit]))])?;
            Ok(vec![batch])
        })
        .collect::<DfResult<Vec<_>>>()?;
    let scan: Arc<dyn ExecutionPlan> = MemorySourceConfig::try_new_exec(&partitions, schema, None)?;
    Ok(scan)
}

/// Does the work of the units its input names: one unit per input partition (a task's share of
/// [`units_scan`]).
#[derive(Debug)]
pub struct UnitsExec {
    work: Arc<Work>,
    input: Arc<dyn ExecutionPlan>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl UnitsExec {
    fn new(work: Arc<Work>, input: Arc<dyn ExecutionPlan>, projection: Option<Vec<usize>>) -> DfResult<UnitsExec> {
        let full = work.schema();
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
        Ok(UnitsExec { work, input, projection, schema, properties: Arc::new(properties) })
    }
}

impl DisplayAs for UnitsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match self.work.as_ref() {
            Work::Clean(t) => write!(f, "PinpipeUnitsExec: clean {:?}, {} units of objects", t.kind, t.units.len()),
            Work::Write(t) => write!(f, "PinpipeUnitsExec: write {:?} to {}, {} units", t.kind, t.table, t.units.len()),
        }
    }
}

impl ExecutionPlan for UnitsExec {
    fn name(&self) -> &'static str {
        "PinpipeUnitsExec"
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
            .map_err(|c| DataFusionError::Internal(format!("PinpipeUnitsExec has one input, not {}", c.len())))?;
        Ok(Arc::new(UnitsExec::new(Arc::clone(&self.work), input, self.projection.clone())?))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let work = Arc::clone(&self.work);
        let projection = self.projection.clone();
        let units = self.input.execute(partition, context)?;
        let batches = units
            .map(|b| -> DfResult<Vec<u32>> {
                let b = b?;
                let column = b
                    .column_by_name("unit")
                    .and_then(|c| c.as_any().downcast_ref::<UInt32Array>())
                    .ok_or_else(|| DataFusionError::Internal("PinpipeUnitsExec's input has no unit column".into()))?;
                Ok(column.values().to_vec())
            })
            .map_ok(|units| futures_util::stream::iter(units).map(Ok::<u32, DataFusionError>))
            .try_flatten()
            .and_then(move |unit| {
                let (work, projection) = (Arc::clone(&work), projection.clone());
                async move {
                    let row = work.run(unit).await?;
                    match &projection {
                        Some(p) => row.project(p).map_err(DataFusionError::from),
                        None => Ok(row),
                    }
                }
            });
        Ok(Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&self.schema), batches)))
    }
}

/// The store of `config`, opened once per process: the tasks an executor runs share one client
/// per store (its connections, and credentials fetched once from the instance or container role).
fn open(config: &StoreConfig) -> pinpipe_store::Result<Store> {
    static OPEN: OnceLock<Mutex<HashMap<String, Store>>> = OnceLock::new();
    let key = format!("{config:?}");
    let open = OPEN.get_or_init(Default::default);
    if let Some(store) = open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key) {
        return Ok(store.clone());
    }
    let store = config.validate_or(std::env::temp_dir())?.open()?;
    open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, store.clone());
    Ok(store)
}

/// Reads and cleans unit `unit` of `task`, leaves its [`wire`] batches in the stage store as an
/// Arrow IPC file and its keys beside it ([`keys_key`]; a task run again writes the same
/// objects), and returns where.
async fn clean(task: &Task, unit: u32) -> DfResult<RecordBatch> {
    let external = |e: Box<dyn std::error::Error + Send + Sync>| DataFusionError::External(e);
    let objects = task
        .units
        .get(unit as usize)
        .ok_or_else(|| DataFusionError::Execution(format!("unit {unit} of {} does not exist", task.units.len())))?;
    let store = open(&task.store).map_err(|e| external(Box::new(e)))?;
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
    let keys = wire::keys(&batches).map_err(|e| external(Box::new(e)))?;
    let bytes = wire::to_ipc(&batches).map_err(|e| external(Box::new(e)))?;
    let keys = wire::to_ipc(&keys).map_err(|e| external(Box::new(e)))?;
    let size = bytes.len() as u64;
    let stage = open(&task.stage).map_err(|e| external(Box::new(e)))?;
    let key = unit_key(&task.stage_prefix, unit);
    // The rows first: the keys the job reads are there only once the rows are.
    stage.inner.put(&stage.key(&key), bytes.into()).await.map_err(|e| external(Box::new(e)))?;
    stage.inner.put(&stage.key(&keys_key(&key)), keys.into()).await.map_err(|e| external(Box::new(e)))?;
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

/// Writes the rows to keep of `unit` (staged by the clean task) as data files of the task's
/// table, with their fingerprint files, and returns their `add` actions. Nothing is committed: a
/// task run again writes other files, and only those the job commits are in the table.
async fn write(task: &WriteTask, unit: &UnitKeep) -> DfResult<RecordBatch> {
    let external = |e: Box<dyn std::error::Error + Send + Sync>| DataFusionError::External(e);
    let started = Instant::now();
    let warehouse = task.stage.validate_or(std::env::temp_dir()).map_err(|e| external(Box::new(e)))?;
    let stage = open(&task.stage).map_err(|e| external(Box::new(e)))?;
    let key = unit_key(&task.stage_prefix, unit.unit);
    let mut chunk = read_staged(&stage, task.kind, unit.unit, &key).await.map_err(DataFusionError::Execution)?;
    let keep = unit
        .flags()
        .filter(|k| k.len() == chunk.cleaned.fingerprints.len())
        .ok_or_else(|| DataFusionError::Execution(format!("the rows to keep of {key} do not match its rows")))?;
    chunk.cleaned.retain(&keep).map_err(|e| external(Box::new(e)))?;
    let location = warehouse.table_location(&task.table).map_err(|e| external(Box::new(e)))?;
    let url = location.url.to_string();
    let table = pinpipe_store::delta::open(&location).await.map_err(|e| external(Box::new(e)))?;
    let busy = Busy::default();
    let mut writer = TableWriter::new(&table, &url, &busy).map_err(|e| external(Box::new(e)))?;
    for (batch, fingerprints) in chunk.cleaned.into_parts().map_err(|e| external(Box::new(e)))? {
        writer.write(batch, fingerprints).await.map_err(|e| external(Box::new(e)))?;
    }
    let (adds, rows) = writer.finish().await.map_err(|e| external(Box::new(e)))?;
    let adds = serde_json::to_string(&adds).map_err(|e| external(Box::new(e)))?;
    tracing::debug!(unit = unit.unit, rows, seconds = started.elapsed().as_secs_f64(), "wrote a unit");
    let row = RecordBatch::try_new(
        written_schema(),
        vec![
            Arc::new(UInt32Array::from(vec![unit.unit])),
            Arc::new(StringArray::from(vec![adds])),
            Arc::new(UInt64Array::from(vec![rows])),
            Arc::new(UInt64Array::from(vec![busy.write_ns.load(Ordering::Relaxed)])),
        ],
    )?;
    Ok(row)
}

/// Reads and decodes unit `unit` of `kind` staged at `key` in `stage` (whole or its keys); the
/// error names the object.
pub async fn read_staged(stage: &Store, kind: Kind, unit: u32, key: &str) -> Result<read::Chunk, String> {
    let read = async { stage.inner.get(&stage.key(key)).await?.bytes().await };
    let bytes = read.await.map_err(|e| format!("cannot read the cleaned unit {key}: {e}"))?;
    wire::from_ipc(kind, unit, bytes).map_err(|e| format!("the cleaned unit {key} is not readable: {e}"))
}

/// The key of a staged unit's keys (fingerprints and description, [`wire::keys`]), beside the
/// unit at `key`.
pub fn keys_key(key: &str) -> String {
    match key.strip_suffix(".arrow") {
        Some(stem) => format!("{stem}.keys.arrow"),
        None => format!("{key}.keys"),
    }
}

/// Tag in front of the nodes this codec encodes (Ballista's own start otherwise).
const TAG: &[u8] = b"pinpipe-units/1\n";

/// The logical and physical codec of a pinpipe cluster: [`Units`] and [`UnitsExec`], and
/// everything else (Ballista's nodes, file formats, functions) through Ballista's codecs. The
/// client, the scheduler and every executor use it.
#[derive(Debug, Default)]
pub struct Codec {
    logical: BallistaLogicalExtensionCodec,
    physical: BallistaPhysicalExtensionCodec,
}

fn encode_work(work: &Work, buf: &mut Vec<u8>) -> DfResult<()> {
    buf.extend_from_slice(TAG);
    serde_json::to_writer(buf, work).map_err(|e| DataFusionError::External(Box::new(e)))
}

fn decode_work(buf: &[u8]) -> Option<DfResult<Work>> {
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
        match decode_work(buf) {
            Some(work) => Ok(Arc::new(Units::new(work?))),
            None => self.logical.try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        match node.downcast_ref::<Units>() {
            Some(units) => encode_work(&units.work, buf),
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

/// What [`UnitsExec`] carries on the wire: the work and the projection.
#[derive(Serialize, Deserialize)]
struct ExecWire {
    work: Work,
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
            return Err(DataFusionError::Internal(format!("PinpipeUnitsExec has one input, not {}", inputs.len())));
        };
        Ok(Arc::new(UnitsExec::new(Arc::new(w.work), Arc::clone(input), w.projection)?))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        let Some(exec) = node.downcast_ref::<UnitsExec>() else {
            return self.physical.try_encode(node, buf, converter);
        };
        buf.extend_from_slice(TAG);
        let w = ExecWire { work: exec.work.as_ref().clone(), projection: exec.projection.clone() };
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
