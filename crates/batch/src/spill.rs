//! [`Buffer`]: a run's new rows, held until the table's own fingerprints have been checked
//! (only then is it known which new rows repeat rows the table holds). Rows stay in memory up to
//! a budget; beyond it everything buffered goes to an Arrow IPC file in the spill directory,
//! read back in order afterwards. The file is deleted when the buffer is dropped.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, FixedSizeBinaryArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;

use crate::{Error, Result};

/// Name of the fingerprint column of spilled batches.
const FP_COLUMN: &str = "__pinpipe_fingerprint";

/// Buffered rows and their fingerprints.
pub struct Buffer {
    memory: Vec<(RecordBatch, Vec<u128>)>,
    memory_bytes: usize,
    budget: usize,
    spill_dir: std::path::PathBuf,
    spilled: Option<Spilled>,
}

struct Spilled {
    file: tempfile::NamedTempFile,
    writer: FileWriter<BufWriter<File>>,
    batches: usize,
}

impl Buffer {
    /// An empty buffer holding up to `budget` bytes in memory, spilling into `spill_dir`.
    pub fn new(budget: usize, spill_dir: &Path) -> Self {
        Buffer { memory: Vec::new(), memory_bytes: 0, budget, spill_dir: spill_dir.to_owned(), spilled: None }
    }

    /// Whether anything was spilled to disk.
    pub fn spilled(&self) -> bool {
        self.spilled.is_some()
    }

    /// Adds rows.
    pub fn push(&mut self, batch: RecordBatch, fps: Vec<u128>) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.memory_bytes += batch.get_array_memory_size() + fps.len() * 16;
        self.memory.push((batch, fps));
        if self.memory_bytes > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<()> {
        for (batch, fps) in std::mem::take(&mut self.memory) {
            let with_fp = with_fingerprints(&batch, &fps)?;
            if self.spilled.is_none() {
                std::fs::create_dir_all(&self.spill_dir)
                    .map_err(Error::io(format!("cannot create the spill directory {}", self.spill_dir.display())))?;
                let file = tempfile::Builder::new()
                    .prefix("pinpipe-batch-")
                    .suffix(".arrow")
                    .tempfile_in(&self.spill_dir)
                    .map_err(Error::io(format!("cannot create a spill file in {}", self.spill_dir.display())))?;
                let out = file.reopen().map_err(Error::io("cannot open the spill file"))?;
                let writer = FileWriter::try_new(BufWriter::new(out), &with_fp.schema())?;
                tracing::debug!(file = %file.path().display(), "spilling the run's new rows");
                self.spilled = Some(Spilled { file, writer, batches: 0 });
            }
            if let Some(s) = self.spilled.as_mut() {
                s.writer.write(&with_fp)?;
                s.batches += 1;
            }
        }
        self.memory_bytes = 0;
        Ok(())
    }

    /// Every buffered batch with its fingerprints, in the order pushed (spilled ones are read
    /// back one at a time).
    pub fn into_batches(mut self) -> Result<impl Iterator<Item = Result<(RecordBatch, Vec<u128>)>>> {
        let spilled = match self.spilled.take() {
            Some(mut s) => {
                s.writer.finish()?;
                let file = File::open(s.file.path()).map_err(Error::io("cannot read the spill file back"))?;
                // The open descriptor keeps the data readable; the name goes with `s.file`.
                Some(FileReader::try_new(BufReader::new(file), None)?)
            }
            None => None,
        };
        let from_disk = spilled.into_iter().flatten().map(|b| split_fingerprints(&b?));
        Ok(from_disk.chain(std::mem::take(&mut self.memory).into_iter().map(Ok)))
    }
}

fn with_fingerprints(batch: &RecordBatch, fps: &[u128]) -> Result<RecordBatch> {
    let bytes: Vec<[u8; 16]> = fps.iter().map(|f| f.to_le_bytes()).collect();
    let column = FixedSizeBinaryArray::try_from_iter(bytes.iter())?;
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(FP_COLUMN, DataType::FixedSizeBinary(16), false));
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(column));
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

fn split_fingerprints(batch: &RecordBatch) -> Result<(RecordBatch, Vec<u128>)> {
    let n = batch.num_columns() - 1;
    let fps = batch.column(n).as_fixed_size_binary();
    let fps: Vec<u128> = (0..fps.len())
        .map(|i| {
            let mut b = [0u8; 16];
            b.copy_from_slice(fps.value(i));
            u128::from_le_bytes(b)
        })
        .collect();
    let schema: SchemaRef = Arc::new(Schema::new(batch.schema().fields()[..n].to_vec()));
    Ok((RecordBatch::try_new(schema, batch.columns()[..n].to_vec())?, fps))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Int64Array;

    use super::*;

    fn batch(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("ind", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
    }

    #[test]
    fn rows_come_back_in_order_from_memory_and_from_the_spill_file() {
        let dir = tempfile::tempdir().unwrap();
        for budget in [usize::MAX, 1] {
            let mut b = Buffer::new(budget, &dir.path().join("spill"));
            for i in 0..5i64 {
                b.push(batch(&[i * 10, i * 10 + 1]), vec![i as u128, u128::MAX - i as u128]).unwrap();
            }
            assert_eq!(b.spilled(), budget == 1);
            let got: Vec<(Vec<i64>, Vec<u128>)> = b
                .into_batches()
                .unwrap()
                .map(|r| {
                    let (batch, fps) = r.unwrap();
                    let v = batch.column(0).as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                    (v.values().to_vec(), fps)
                })
                .collect();
            assert_eq!(got.len(), 5);
            assert_eq!(got[3], (vec![30, 31], vec![3, u128::MAX - 3]));
            // The spill file is gone with the buffer.
            assert_eq!(std::fs::read_dir(dir.path().join("spill")).map_or(0, |d| d.count()), 0);
        }
    }
}
