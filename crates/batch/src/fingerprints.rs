//! The fingerprints of a table's rows, kept beside its data files so that a run can drop new
//! rows that repeat rows the table already holds without reading (or holding) the table.
//!
//! Each data file the job writes gets a fingerprint file,
//! `<table>/_pinpipe_fingerprints/<data file>.fp`: one header line (JSON: the data files it
//! covers and their rows), then 16 bytes per row (the rows' [`pinpipe_transform::fingerprint`],
//! little-endian). It is written before the commit that adds its data file, and it counts only
//! while that file is part of the table: a file removed by `--full` (or by any compaction), or
//! never committed because its run was killed, takes its fingerprints with it. A data file
//! without a valid fingerprint file (written by an older pinpipe, or by a compaction) has its
//! fingerprints computed from its rows once and written, so the files repair themselves.
//!
//! Directories starting with `_` are not data to Delta: readers ignore them, and `VACUUM` keeps
//! them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use deltalake::ObjectStore;
use deltalake::kernel::Add;
use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use pinpipe_model::Kind;
use pinpipe_transform::Fingerprinter;
use serde::{Deserialize, Serialize};

use crate::delta::DataFile;
use crate::{Error, Result};

/// Directory of the fingerprint files, under the table root.
pub const DIR: &str = "_pinpipe_fingerprints";

/// Fingerprint files read at once.
const CONCURRENCY: usize = 8;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    /// Format version (1).
    version: u32,
    /// Data files covered, relative to the table root, in the order of their rows.
    files: Vec<String>,
    /// Rows covered.
    rows: u64,
}

fn key_for(first_file: &str) -> ObjectPath {
    ObjectPath::from(format!("{DIR}/{}.fp", first_file.replace('/', "_")))
}

/// Writes the fingerprint file of `files` (rows in order) into the table's store.
pub async fn write(store: &dyn ObjectStore, table: &str, files: &[String], fps: &[u128]) -> Result<()> {
    let Some(first) = files.first() else { return Ok(()) };
    let header = Header { version: 1, files: files.to_vec(), rows: fps.len() as u64 };
    let mut body = BytesMut::with_capacity(256 + fps.len() * 16);
    body.put_slice(&serde_json::to_vec(&header).unwrap_or_default());
    body.put_u8(b'\n');
    for fp in fps {
        body.put_u128_le(*fp);
    }
    let key = key_for(first);
    store
        .put(&key, body.freeze().into())
        .await
        .map_err(|source| Error::Fingerprints { table: table.to_owned(), source })?;
    Ok(())
}

/// The fingerprint files written for `adds` and `fps` (the rows of those files, in order).
pub async fn write_for(store: &dyn ObjectStore, table: &str, adds: &[Add], fps: &[u128]) -> Result<()> {
    let files: Vec<String> = adds.iter().map(|a| a.path.clone()).collect();
    write(store, table, &files, fps).await
}

fn parse(body: &Bytes) -> Option<(Header, &[u8])> {
    let nl = memchr::memchr(b'\n', body)?;
    let header: Header = serde_json::from_slice(&body[..nl]).ok()?;
    let rest = &body[nl + 1..];
    (header.version == 1 && rest.len() as u64 == header.rows * 16).then_some((header, rest))
}

/// Offers every fingerprint of the table's rows (`files`, its data files) to `probe`, from the
/// fingerprint files that are valid for them; computes (and writes) the missing ones from the
/// data. Returns the number of fingerprints offered.
pub async fn scan(
    store: Arc<dyn ObjectStore>,
    table: &str,
    kind: Kind,
    files: &[DataFile],
    probe: &(dyn Fn(u128) + Sync),
) -> Result<u64> {
    let err = |source| Error::Fingerprints { table: table.to_owned(), source };
    let active: HashMap<&str, Option<u64>> = files.iter().map(|f| (f.path.as_str(), f.rows)).collect();
    let listing: Vec<object_store::ObjectMeta> =
        store.list(Some(&ObjectPath::from(DIR))).try_collect().await.map_err(err)?;
    let covered = std::sync::Mutex::new(HashSet::<String>::new());
    let offered = futures_util::stream::iter(listing)
        .map(|meta| {
            let store = Arc::clone(&store);
            let (active, covered) = (&active, &covered);
            async move {
                let body = store.get(&meta.location).await.map_err(err)?.bytes().await.map_err(err)?;
                let Some((header, fps)) = parse(&body) else {
                    tracing::warn!(table, file = %meta.location, "ignoring an unreadable fingerprint file");
                    return Ok::<u64, Error>(0);
                };
                // Valid only while every file it covers is in the table, with the same rows.
                let rows: Option<u64> = header.files.iter().map(|f| active.get(f.as_str()).copied().flatten()).sum();
                if rows != Some(header.rows) {
                    return Ok(0);
                }
                for fp in fps.chunks_exact(16) {
                    probe(decode(fp));
                }
                if let Ok(mut c) = covered.lock() {
                    c.extend(header.files);
                }
                Ok(header.rows)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_fold(0u64, |n, k| std::future::ready(Ok(n + k)))
        .await?;
    let covered = covered.into_inner().unwrap_or_default();
    let missing: Vec<&DataFile> = files.iter().filter(|f| !covered.contains(&f.path)).collect();
    let mut repaired = 0u64;
    if !missing.is_empty() {
        tracing::info!(table, files = missing.len(), "computing the fingerprints of data files that have none");
        let fingerprinter = Fingerprinter::new(kind)?;
        for f in missing {
            let fps = file_fingerprints(Arc::clone(&store), table, &f.path, &fingerprinter).await?;
            for &fp in &fps {
                probe(fp);
            }
            write(store.as_ref(), table, std::slice::from_ref(&f.path), &fps).await?;
            repaired += fps.len() as u64;
        }
    }
    Ok(offered + repaired)
}

/// The fingerprints of the rows of one data file, read from its Parquet (at most one data
/// file's bytes in memory: the job writes files of [`crate::ingest`]'s size).
async fn file_fingerprints(
    store: Arc<dyn ObjectStore>,
    table: &str,
    path: &str,
    fingerprinter: &Fingerprinter,
) -> Result<Vec<u128>> {
    use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let key = ObjectPath::from(path);
    let err = |source| Error::Fingerprints { table: table.to_owned(), source };
    let bytes = store.get(&key).await.map_err(err)?.bytes().await.map_err(err)?;
    let fail = |e: deltalake::parquet::errors::ParquetError| Error::Delta {
        table: table.to_owned(),
        source: format!("reading {path}: {e}").into(),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(fail)?.build().map_err(fail)?;
    let mut out = Vec::new();
    for batch in reader {
        out.extend(fingerprinter.fingerprints(&batch?)?);
    }
    Ok(out)
}

/// A fingerprint as stored (16 bytes, little-endian).
fn decode(bytes: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[..16]);
    u128::from_le_bytes(b)
}
