//! Reading a few columns of a clean table straight from its Parquet files, for bringing the
//! questions' aggregates up to date ([`crate::aggregates`]): the whole of the files a run added,
//! or only the rows of older files whose `ind` is in a set (the older rows that the new ones join
//! with).
//!
//! The set is checked while the `ind` column is decoded (a Parquet row filter), so the other
//! columns are decoded only for the rows that match: finding the few thousand rows of ten million
//! that share a key with a run's new rows reads one column of the table, not all of them. Row
//! groups are read in parallel, one task each.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::datatypes::{Int64Type, SchemaRef};
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{ArrowPredicateFn, ArrowReaderMetadata, ArrowReaderOptions, RowFilter};
use datafusion::parquet::arrow::async_reader::{AsyncFileReader, MetadataSuffixFetch};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use deltalake::ObjectStore;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStoreExt};

use crate::{Error, Result};

/// A set of `ind` values.
pub type Keys = hashbrown::HashSet<i64>;

/// Row groups read at once.
fn concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}

/// The rows of `files` (paths relative to the table root in `store`) with the columns of
/// `schema` (a projection of the table's schema whose first column is `ind`); with `keys`, only
/// the rows whose `ind` is in it. Batches come in no particular order.
pub async fn read(
    store: Arc<dyn ObjectStore>,
    table: &str,
    files: &[String],
    schema: &SchemaRef,
    keys: Option<Arc<Keys>>,
) -> Result<Vec<RecordBatch>> {
    let fail = |path: &str| {
        let (table, what) = (table.to_owned(), format!("reading {path}"));
        move |e: ParquetError| Error::Delta { table: table.clone(), source: format!("{what}: {e}").into() }
    };
    // The metadata of every file, then one task per row group.
    let metas: Vec<(String, ArrowReaderMetadata)> = futures_util::stream::iter(files.iter().cloned())
        .map(|path| {
            let store = Arc::clone(&store);
            async move {
                let mut reader = Reader { store, path: ObjectPath::from(path.as_str()) };
                let meta = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::default())
                    .await
                    .map_err(fail(&path))?;
                Ok::<_, Error>((path, meta))
            }
        })
        .buffer_unordered(concurrency())
        .try_collect()
        .await?;
    let tasks = metas
        .into_iter()
        .flat_map(|(path, meta)| (0..meta.metadata().num_row_groups()).map(move |rg| (path.clone(), meta.clone(), rg)));
    let batches: Vec<Vec<RecordBatch>> = futures_util::stream::iter(tasks)
        .map(|(path, meta, rg)| {
            let (store, schema, keys) = (Arc::clone(&store), Arc::clone(schema), keys.clone());
            let fail = fail(&path);
            tokio::spawn(async move {
                let reader = Reader { store, path: ObjectPath::from(path.as_str()) };
                let parquet = meta.parquet_schema();
                let names = schema.fields().iter().map(|f| f.name().as_str());
                let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta.clone())
                    .with_projection(ProjectionMask::columns(parquet, names))
                    .with_row_groups(vec![rg])
                    .with_batch_size(64 * 1024);
                if let Some(keys) = keys {
                    let ind = ProjectionMask::columns(parquet, ["ind"]);
                    let predicate = ArrowPredicateFn::new(ind, move |batch: RecordBatch| {
                        let ind = batch.column(0).as_primitive::<Int64Type>();
                        Ok(ind.values().iter().map(|v| Some(keys.contains(v))).collect::<BooleanArray>())
                    });
                    builder = builder.with_row_filter(RowFilter::new(vec![Box::new(predicate)]));
                }
                let stream = builder.build().map_err(&fail)?;
                let read: Vec<RecordBatch> = stream.try_collect().await.map_err(&fail)?;
                read.into_iter().filter(|b| b.num_rows() > 0).map(|b| conform(&b, &schema)).collect::<Result<Vec<_>>>()
            })
        })
        .buffer_unordered(concurrency())
        .map(|joined| joined?)
        .try_collect()
        .await?;
    Ok(batches.into_iter().flatten().collect())
}

/// `batch` with the columns of `schema`, by name, cast where the file's types differ (e.g. a
/// timestamp's unit or zone).
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            let c = batch.column_by_name(f.name()).ok_or_else(|| {
                datafusion::arrow::error::ArrowError::SchemaError(format!("a data file has no column {}", f.name()))
            })?;
            if c.data_type() == f.data_type() {
                Ok(Arc::clone(c))
            } else {
                datafusion::arrow::compute::cast(c, f.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// A Parquet file in an object store, read by ranges.
struct Reader {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
}

fn external(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for Reader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<bytes::Bytes>> {
        async move { self.store.get_range(&self.path, range).await.map_err(external) }.boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Vec<bytes::Bytes>>> {
        async move { self.store.get_ranges(&self.path, &ranges).await.map_err(external) }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_via_suffix_and_finish(self)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

impl MetadataSuffixFetch for &mut Reader {
    fn fetch_suffix(&mut self, suffix: usize) -> BoxFuture<'_, datafusion::parquet::errors::Result<bytes::Bytes>> {
        let options = GetOptions { range: Some(GetRange::Suffix(suffix as u64)), ..Default::default() };
        async move { self.store.get_opts(&self.path, options).await.map_err(external)?.bytes().await.map_err(external) }
            .boxed()
    }
}
