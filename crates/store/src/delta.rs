//! Delta tables in a store (delta-rs), as every stage that keeps tables opens them: the batch
//! job's clean tables and the streaming job's tables.
//!
//! `s3://` tables go through pinpipe's own object store (the same endpoint, region and
//! credentials as every other store), not through a second AWS client inside delta-rs. Commits
//! use S3 conditional writes (`If-None-Match`), so a lost race is detected, never overwritten.
//! The Parquet settings of every data file pinpipe writes are [`writer_properties`].

use std::sync::Arc;

use deltalake::logstore::{LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig, default_logstore};
use deltalake::{DeltaResult, DeltaTable, DeltaTableBuilder, DeltaTableError};

use crate::TableLocation;

/// Columns of the clean tables with few distinct values, the only ones dictionary-encoded.
pub const DICTIONARY_COLUMNS: [&str; 5] = ["category", "country", "is_image_or_video", "save_location", "age"];

/// The default (conditional-put) Delta log store, for `s3://` tables whose store pinpipe builds.
struct ConditionalPutLogStore;

impl LogStoreFactory for ConditionalPutLogStore {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &url::Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(prefixed_store, root_store, location, options))
    }
}

/// Makes `s3://` table URLs known to delta-rs (idempotent).
pub fn register_handlers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(s3) = url::Url::parse("s3://") {
            deltalake::logstore::logstore_factories().insert(s3, Arc::new(ConditionalPutLogStore));
        }
    });
}

/// Opens the table at `location` (an uninitialised location is fine: the first write creates it).
pub async fn open(location: &TableLocation) -> DeltaResult<DeltaTable> {
    register_handlers();
    let mut builder = DeltaTableBuilder::from_url(location.url.clone())?;
    if let Some(root) = &location.root {
        builder = builder.with_storage_backend(root.clone(), location.url.clone());
    }
    let mut table = builder.build()?;
    match table.load().await {
        Ok(()) | Err(DeltaTableError::NotATable(_)) => Ok(table),
        Err(e) => Err(e),
    }
}

/// Parquet settings of the files pinpipe writes: Snappy (cheaper to write than the zstd
/// default, still compressed); dictionary encoding only for the low-cardinality columns (on free
/// text such as titles it is built and then abandoned, at a cost); row groups of 128Ki rows, so
/// a writer buffers one modest row group instead of a million rows.
pub fn writer_properties() -> deltalake::parquet::file::properties::WriterProperties {
    use deltalake::parquet::schema::types::ColumnPath;
    let mut b = deltalake::parquet::file::properties::WriterProperties::builder()
        .set_compression(deltalake::parquet::basic::Compression::SNAPPY)
        .set_dictionary_enabled(false)
        .set_max_row_group_row_count(Some(128 * 1024));
    for column in DICTIONARY_COLUMNS {
        b = b.set_column_dictionary_enabled(ColumnPath::from(column), true);
    }
    b.build()
}
