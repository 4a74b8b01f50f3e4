//! An object's bytes in its format: JSON lines (each record exactly one line, whatever its
//! bytes: [`pinpipe_store::layout::frame`]), the same gzip-compressed, or Parquet with the raw
//! schema of the topic's records ([`pinpipe_transform::RawBuilder`]; a topic of no known kind as
//! one `value` text column). A record that does not fit the Parquet schema is refused with the
//! reason, for the sink's dead letters.
//!
//! Parquet objects carry, in their key-value metadata, the offsets they cover
//! (`pinpipe.first_offset`, `pinpipe.next_offset`), so that resuming after an object whose
//! refused records went to the dead letters still knows where it ends.

use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use pinpipe_model::Kind;
use pinpipe_store::layout::{Format, ParquetCodec, frame};
use pinpipe_transform::RawBuilder;

use crate::{Error, Result};

use pinpipe_store::layout::{PARQUET_FIRST_OFFSET as FIRST_OFFSET_KEY, PARQUET_NEXT_OFFSET as NEXT_OFFSET_KEY};

/// The records of one object being built.
pub(crate) enum Encoder {
    /// JSON lines (compressed on finishing when `gzip`).
    Lines { bytes: Vec<u8>, records: usize, gzip: bool },
    /// Parquet rows.
    Parquet { builder: RawBuilder, codec: ParquetCodec },
}

impl Encoder {
    /// An empty object in `format`, of records of `kind` (`None`: no known kind).
    pub(crate) fn new(format: Format, kind: Option<Kind>) -> Encoder {
        match format {
            Format::Json => Encoder::Lines { bytes: Vec::new(), records: 0, gzip: false },
            Format::JsonGzip => Encoder::Lines { bytes: Vec::new(), records: 0, gzip: true },
            Format::Parquet(codec) => {
                Encoder::Parquet { builder: kind.map_or_else(RawBuilder::values, RawBuilder::new), codec }
            }
        }
    }

    /// Adds a record; `Err` (nothing added) with the reason when it does not fit the format.
    pub(crate) fn push(&mut self, value: &[u8]) -> std::result::Result<(), String> {
        match self {
            Encoder::Lines { bytes, records, .. } => {
                bytes.extend_from_slice(&frame(value));
                bytes.push(b'\n');
                *records += 1;
                Ok(())
            }
            Encoder::Parquet { builder, .. } => builder.push(value),
        }
    }

    /// Records in the object.
    pub(crate) fn records(&self) -> usize {
        match self {
            Encoder::Lines { records, .. } => *records,
            Encoder::Parquet { builder, .. } => builder.len(),
        }
    }

    /// The object's bytes; it covers offsets `first..next`.
    pub(crate) fn finish(self, first: u64, next: u64) -> Result<Bytes> {
        match self {
            Encoder::Lines { bytes, gzip: false, .. } => Ok(Bytes::from(bytes)),
            Encoder::Lines { bytes, gzip: true, .. } => {
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 4), flate2::Compression::new(6));
                gz.write_all(&bytes)
                    .and_then(|()| gz.finish())
                    .map(Bytes::from)
                    .map_err(|e| Error::Encode(e.to_string()))
            }
            Encoder::Parquet { mut builder, codec } => {
                let batch = builder.finish().map_err(|e| Error::Encode(e.to_string()))?;
                let compression = match codec {
                    ParquetCodec::Snappy => Compression::SNAPPY,
                    ParquetCodec::Gzip => Compression::GZIP(GzipLevel::default()),
                    ParquetCodec::Zstd => Compression::ZSTD(ZstdLevel::default()),
                    ParquetCodec::Uncompressed => Compression::UNCOMPRESSED,
                };
                let props = WriterProperties::builder()
                    .set_compression(compression)
                    .set_key_value_metadata(Some(vec![
                        KeyValue::new(FIRST_OFFSET_KEY.to_owned(), first.to_string()),
                        KeyValue::new(NEXT_OFFSET_KEY.to_owned(), next.to_string()),
                    ]))
                    .build();
                let mut out = Vec::new();
                let encode = |e: parquet::errors::ParquetError| Error::Encode(e.to_string());
                let mut writer =
                    ArrowWriter::try_new(&mut out, Arc::clone(&batch.schema()), Some(props)).map_err(encode)?;
                writer.write(&batch).map_err(encode)?;
                writer.close().map_err(encode)?;
                Ok(Bytes::from(out))
            }
        }
    }
}

/// An object of `records` (values of records of `kind`) in `format`, covering offsets
/// `first..next`: what the sink writes for them (records the format refuses are left out).
pub fn encode_records<'a>(
    format: Format,
    kind: Option<Kind>,
    records: impl IntoIterator<Item = &'a [u8]>,
    first: u64,
    next: u64,
) -> Result<Bytes> {
    let mut e = Encoder::new(format, kind);
    for r in records {
        let _ = e.push(r);
    }
    e.finish(first, next)
}

/// The number of records an object holds, or the offset after the last record it covers (from
/// its metadata, for Parquet): where a partition whose newest object this is resumes, with its
/// start offset.
pub(crate) fn covered(format: Format, start: u64, bytes: &Bytes) -> Result<u64> {
    let lines = |b: &[u8]| b.iter().filter(|c| **c == b'\n').count() as u64;
    match format {
        Format::Json => Ok(start + lines(bytes)),
        Format::JsonGzip => {
            let mut text = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
                .map_err(|e| Error::Encode(format!("an object is not gzip: {e}")))?;
            Ok(start + lines(&text))
        }
        Format::Parquet(_) => {
            use parquet::file::reader::FileReader;
            let reader = parquet::file::serialized_reader::SerializedFileReader::new(bytes.clone())
                .map_err(|e| Error::Encode(format!("an object is not Parquet: {e}")))?;
            let meta = reader.metadata().file_metadata();
            let next = meta
                .key_value_metadata()
                .and_then(|kv| kv.iter().find(|k| k.key == NEXT_OFFSET_KEY))
                .and_then(|k| k.value.as_deref()?.parse::<u64>().ok());
            Ok(next.unwrap_or(start + meta.num_rows().max(0) as u64))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    #[test]
    fn each_format_holds_the_records_and_says_what_it_covers() {
        let records: [&[u8]; 3] = [br#"{"ind":1,"age":20}"#, b"{\n\"ind\":2}", br#"{"ind":3,"age":"old"}"#];
        for format in
            [Format::Json, Format::JsonGzip, Format::Parquet(ParquetCodec::Snappy), Format::Parquet(ParquetCodec::Zstd)]
        {
            let mut e = Encoder::new(format, Some(Kind::User));
            let refused: Vec<bool> = records.iter().map(|r| e.push(r).is_err()).collect();
            let bytes = e.finish(10, 13).unwrap();
            match format {
                Format::Json => {
                    assert_eq!(refused, [false, false, false]);
                    assert_eq!(
                        bytes,
                        Bytes::from("{\"ind\":1,\"age\":20}\n{ \"ind\":2}\n{\"ind\":3,\"age\":\"old\"}\n")
                    );
                }
                Format::JsonGzip => {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text).unwrap();
                    assert_eq!(text.lines().count(), 3);
                }
                Format::Parquet(_) => {
                    // The third record's age is not a number: refused, for the dead letters.
                    assert_eq!(refused, [false, false, true]);
                    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap().build().unwrap();
                    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
                    assert_eq!(batches[0].schema(), pinpipe_model::schema::raw(Kind::User));
                    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
                }
            }
            // Resuming after this object: its start plus its lines, or the offsets it covers.
            assert_eq!(covered(format, 10, &bytes).unwrap(), 13, "{format:?}");
        }
        assert!(covered(Format::JsonGzip, 0, &Bytes::from_static(b"plain")).is_err());
    }
}
