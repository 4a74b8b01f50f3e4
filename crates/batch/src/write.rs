//! Writing a table's new rows as Parquet data files, each with its fingerprint file
//! ([`crate::fingerprints`]), without committing them: the job commits the files' `add` actions
//! with the ingested positions in one Delta commit ([`crate::delta::commit`]). The job uses it in
//! one process; a cluster's executors use it for the units they cleaned ([`crate::read::Reader`]).

use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use deltalake::DeltaTable;
use deltalake::kernel::Add;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};

use crate::read::Busy;
use crate::{Error, Result, fingerprints};

/// Parquet bytes per data file (each file gets its own fingerprint file). The writer holds a
/// file's bytes until it is complete, so this is also what a table's writer holds.
pub const FILE_BYTES: usize = 64 << 20;

/// Writes Parquet files into the table's directory, each with its fingerprint file; nothing is
/// committed here.
pub struct TableWriter<'a> {
    writer: RecordBatchWriter,
    store: deltalake::logstore::ObjectStoreRef,
    url: &'a str,
    pending: Vec<u128>,
    adds: Vec<Add>,
    rows: u64,
    busy: &'a Busy,
}

impl<'a> TableWriter<'a> {
    /// A writer of data files into `table` (at `url`, for errors); time spent goes to
    /// `busy.write_ns`.
    pub fn new(table: &DeltaTable, url: &'a str, busy: &'a Busy) -> Result<Self> {
        let writer = RecordBatchWriter::for_table(table)
            .map_err(Error::delta(url))?
            .with_writer_properties(pinpipe_store::delta::writer_properties());
        Ok(TableWriter {
            writer,
            store: table.object_store(),
            url,
            pending: Vec::new(),
            adds: Vec::new(),
            rows: 0,
            busy,
        })
    }

    /// Adds `batch` (of the table's schema) with one fingerprint per row; a file is completed
    /// when it holds [`FILE_BYTES`].
    pub async fn write(&mut self, batch: RecordBatch, fps: Vec<u128>) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let t = Instant::now();
        self.rows += batch.num_rows() as u64;
        self.writer.write(batch).await.map_err(Error::delta(self.url))?;
        self.pending.extend(fps);
        Busy::add(&self.busy.write_ns, t);
        if self.writer.buffer_len() >= FILE_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let t = Instant::now();
        let adds = self.writer.flush().await.map_err(Error::delta(self.url))?;
        fingerprints::write_for(self.store.as_ref(), self.url, &adds, &self.pending).await?;
        self.pending.clear();
        self.adds.extend(adds);
        Busy::add(&self.busy.write_ns, t);
        Ok(())
    }

    /// The files written, and their rows.
    pub async fn finish(mut self) -> Result<(Vec<Add>, u64)> {
        if !self.pending.is_empty() {
            self.flush().await?;
        }
        Ok((self.adds, self.rows))
    }
}
