//! The batch job's clean tables as Delta tables (delta-rs): opening and creating them, checking
//! that a table is one of ours, the files it holds, and committing a run's files together with
//! what the run ingested.
//!
//! A run's commit holds its new data files (`add`), and one `txn` action per raw partition it
//! read, `{appId: "pinpipe-batch:<topic>:<partition>", version: <start offset of the last
//! ingested object + 1>}`: the objects of a partition starting before that version are in the
//! table. `txn` actions are part of the table's snapshot (and checkpoints), so a run reads what
//! was ingested from the table alone, and rows and positions can never disagree: a run killed
//! before its commit left neither, one killed after left both. Two runs committing the same
//! partition's app id conflict in Delta's own conflict check (`ConcurrentTransaction`).
//! `--full` commits `remove` actions for every file the table held in the same commit, so readers
//! see the old rows until the new ones are there (and time travel keeps both).
//!
//! Opening tables and the Parquet settings are the warehouse's ([`pinpipe_store::delta`]).

use std::collections::{BTreeMap, HashMap};

use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableError};
use pinpipe_model::{Kind, schema};
use pinpipe_store::TableLocation;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

use pinpipe_store::delta::open;

/// Prefix of the app ids the batch job writes.
pub const APP_ID_PREFIX: &str = "pinpipe-batch";
/// Key of pinpipe's entry in `commitInfo`.
pub const COMMIT_INFO_KEY: &str = "pinpipe";
/// Description of the tables the batch job creates (also how an older pinpipe's tables, which
/// were replaced on every run, are recognised).
pub const DESCRIPTION_PREFIX: &str = "pinpipe batch job: clean ";

/// The app id of `topic`'s `partition`.
pub fn app_id(topic: &str, partition: u32) -> String {
    format!("{APP_ID_PREFIX}:{topic}:{partition}")
}

/// A data file of the table.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// Path relative to the table root.
    pub path: String,
    /// Rows, from the file's statistics.
    pub rows: Option<u64>,
    /// Size in bytes.
    pub size: u64,
}

/// What a table holds, as the batch job needs it.
#[derive(Debug, Clone, Default)]
pub struct TableState {
    /// The version read, if the table exists.
    pub version: Option<u64>,
    /// Its data files.
    pub files: Vec<DataFile>,
    /// Per raw partition: objects starting before this offset are ingested.
    pub ingested: BTreeMap<u32, u64>,
}

impl TableState {
    /// Rows in the table, from file statistics.
    pub fn rows(&self) -> u64 {
        self.files.iter().filter_map(|f| f.rows).sum()
    }
}

/// Reads what `table` holds and what it has ingested of `topic` (partitions `partitions`),
/// refusing a table that is not a clean table of `kind` written by this job.
pub async fn state(table: &DeltaTable, kind: Kind, topic: &str, partitions: &[u32]) -> Result<TableState> {
    let url = table.table_url().to_string();
    let Some(version) = table.version() else { return Ok(TableState::default()) };
    let err = Error::delta(&url);
    let snapshot = table.snapshot().map_err(err)?;
    let expected = schema::clean(kind);
    let actual = snapshot.snapshot().arrow_schema();
    let names =
        |s: &deltalake::arrow::datatypes::Schema| s.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>();
    if names(&actual) != names(&expected) {
        return Err(Error::NotOurs {
            table: url,
            reason: format!(
                "its columns are {:?}, not the clean {kind} columns {:?}",
                names(&actual),
                names(&expected)
            ),
        });
    }
    let mut files = Vec::new();
    for f in snapshot.log_data().iter() {
        if f.deletion_vector_descriptor().is_some() {
            return Err(Error::NotOurs {
                table: url,
                reason: format!(
                    "its file {} has deleted rows (deletion vectors): it was changed by another writer",
                    f.path()
                ),
            });
        }
        files.push(DataFile {
            path: f.path().into_owned(),
            rows: f.num_records().map(|n| n as u64),
            size: u64::try_from(f.size()).unwrap_or(0),
        });
    }
    let mut ingested = BTreeMap::new();
    let store = table.log_store();
    for &p in partitions {
        let v = snapshot.transaction_version(store.as_ref(), app_id(topic, p)).await.map_err(Error::delta(&url))?;
        if let Some(v) = v.and_then(|v| u64::try_from(v).ok()) {
            ingested.insert(p, v);
        }
    }
    Ok(TableState { version: Some(version), files, ingested })
}

/// Whether the table was created by pinpipe's batch job (now or by an older release).
pub fn created_by_batch_job(table: &DeltaTable) -> bool {
    // The kernel keeps the description private; its serialised form has it.
    table
        .snapshot()
        .ok()
        .and_then(|s| serde_json::to_value(s.metadata()).ok())
        .and_then(|m| m.get("description").and_then(|d| d.as_str()).map(|d| d.starts_with(DESCRIPTION_PREFIX)))
        .unwrap_or(false)
}

/// Creates the table (no rows) if it does not exist.
pub async fn ensure_table(table: DeltaTable, location: &TableLocation, name: &str, kind: Kind) -> Result<DeltaTable> {
    if table.version().is_some() {
        return Ok(table);
    }
    let url = location.url.to_string();
    let columns: deltalake::kernel::StructType =
        schema::clean(kind).try_into_kernel().map_err(|e| Error::delta(&url)(e.into()))?;
    let created = table
        .create()
        .with_columns(columns.fields().cloned())
        .with_table_name(name)
        .with_comment(format!("{DESCRIPTION_PREFIX}{name}"))
        .with_save_mode(SaveMode::Ignore)
        .await;
    match created {
        Ok(t) => Ok(t),
        // Created by someone else at the same moment: use it.
        Err(_) => open(location).await.map_err(Error::delta(&url)),
    }
}

/// Per raw partition, what a run ingested (in `commitInfo.pinpipe`, for people and tools).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionIngest {
    /// Objects ingested.
    pub objects: u64,
    /// Start offset of the first object ingested.
    pub first_start: u64,
    /// Start offset of the last object ingested.
    pub last_start: u64,
    /// Offset after the last record ingested.
    pub next_offset: u64,
}

/// What a run commits to one table, in `commitInfo.pinpipe`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run folder's name.
    pub run: String,
    /// `incremental` or `full`.
    pub mode: String,
    /// The topic read.
    pub topic: String,
    /// Per partition read.
    pub partitions: BTreeMap<u32, PartitionIngest>,
    /// Raw records read.
    pub records: u64,
    /// Rows appended.
    pub rows: u64,
    /// Exact duplicates dropped (within the run and against the table).
    pub duplicates: u64,
    /// Records sent to the dead letters.
    pub dead_letters: u64,
}

/// Commits a run to `table`: `adds`, the ingested positions of `info.partitions` (plus
/// `reset`: partitions whose positions go back to 0), and on `overwrite` the removal of every
/// file the table held at `state`. Returns the new version.
pub async fn commit(
    table: &DeltaTable,
    adds: Vec<Add>,
    info: &RunInfo,
    overwrite: Option<&TableState>,
    reset: &[u32],
) -> Result<u64> {
    let url = table.table_url().to_string();
    let err = Error::delta(&url);
    let now = chrono::Utc::now().timestamp_millis();
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut txns: Vec<Transaction> = info
        .partitions
        .iter()
        .map(|(&p, i)| Transaction::new_with_last_update(app_id(&info.topic, p), as_i64(i.last_start + 1), Some(now)))
        .collect();
    txns.extend(reset.iter().map(|&p| Transaction::new_with_last_update(app_id(&info.topic, p), 0, Some(now))));
    let mut actions: Vec<Action> = Vec::with_capacity(adds.len());
    let snapshot = table.snapshot().map_err(&err)?;
    if overwrite.is_some() {
        actions.extend(snapshot.log_data().iter().map(|f| Action::Remove(f.remove_action(true))));
    }
    actions.extend(adds.into_iter().map(Action::Add));
    let meta: HashMap<String, serde_json::Value> =
        HashMap::from([(COMMIT_INFO_KEY.to_owned(), serde_json::to_value(info).unwrap_or_default())]);
    let properties = CommitProperties::default().with_application_transactions(txns).with_metadata(meta);
    let mode = if overwrite.is_some() { SaveMode::Overwrite } else { SaveMode::Append };
    let operation = DeltaOperation::Write { mode, partition_by: None, predicate: None };
    let done = CommitBuilder::from(properties)
        .with_actions(actions)
        .build(Some(snapshot), table.log_store(), operation)
        .await
        .map_err(|e| match e {
            DeltaTableError::Transaction { source } if source.to_string().contains("oncurrent") => {
                Error::Concurrent { table: url.clone(), reason: source.to_string() }
            }
            other => err(other),
        })?;
    Ok(done.version() as u64)
}
