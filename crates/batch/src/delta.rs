//! Writing the clean tables as Delta tables (delta-rs), replaced per run: each run commits an
//! overwrite, so readers see the previous run's rows until the new ones are committed, and the
//! table's history keeps every run (time travel).

use std::collections::HashMap;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;

use crate::{Error, Result};

/// Registers the `s3://` handlers of delta-rs (idempotent).
pub fn register_handlers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| deltalake::aws::register_handlers(None));
}

/// Replaces the table at `url` with `batches`; returns the new table version.
pub async fn overwrite(
    url: url::Url,
    options: HashMap<String, String>,
    name: &str,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<u64> {
    register_handlers();
    let location = url.to_string();
    let err = |e: deltalake::DeltaTableError| Error::Delta { table: location.clone(), source: Box::new(e) };
    let table = DeltaTable::try_from_url_with_storage_options(url.clone(), options).await.map_err(err)?;
    let mut batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
    if batches.is_empty() {
        // An empty run still replaces the table (with no rows, and the schema).
        batches.push(RecordBatch::new_empty(schema));
    }
    let table = table
        .write(batches)
        .with_save_mode(SaveMode::Overwrite)
        .with_table_name(name)
        .with_description(format!("pinpipe batch job: clean {name}"))
        .await
        .map_err(err)?;
    Ok(table.version().unwrap_or(0))
}
