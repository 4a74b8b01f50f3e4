//! [`Cleaner`]: raw records of one kind in, an Arrow batch of the clean table out.
//!
//! Each JSON record is parsed against the raw record's fields (unknown fields ignored), every
//! value rule of [`crate::rules`] is applied, and only when all of them succeed is the row
//! appended; otherwise the record becomes a [`DeadLetter`]. Batches of raw records (Parquet
//! objects) go through the same rules column by column ([`crate::columns`]). Each row of a
//! finished chunk comes with its fingerprint ([`crate::fingerprint`]), by which exact duplicates
//! are dropped.

use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use pinpipe_model::{Kind, schema};

use crate::dead_letter::{DeadLetter, Origin};
use crate::fingerprint::Fingerprinter;
use crate::{Result, raw, rules};

/// A cleaned chunk: rows of one clean table, their fingerprints, and the records refused.
#[derive(Debug)]
pub struct Cleaned {
    /// Which table.
    pub kind: Kind,
    /// The clean rows in the order their records came: a batch per raw batch cleaned column by
    /// column, one for the records cleaned one at a time between them (none empty). Columns of
    /// `pinpipe_model::schema::clean(kind)`; text cleaned column by column is held as string views
    /// until [`Cleaned::to_clean_types`] (or [`Cleaned::into_parts`], [`Cleaned::batch`]).
    pub batches: Vec<RecordBatch>,
    /// One fingerprint per row of `batches`, in order, over its clean values.
    pub fingerprints: Vec<u128>,
    /// Records that could not be parsed or typed.
    pub dead_letters: Vec<DeadLetter>,
    /// Records offered (rows + dead letters; blank lines are not records).
    pub records: u64,
}

/// Cleans records of one kind, one at a time.
pub struct Cleaner {
    kind: Kind,
    table: Table,
    /// Clean rows finished so far, in the order their records came (rows of raw batches, and
    /// the builders' rows before each of them).
    parts: Vec<RecordBatch>,
    /// Rows in the builders.
    building: usize,
    rows: usize,
    dead: Vec<DeadLetter>,
    records: u64,
    fingerprinter: Fingerprinter,
}

enum Table {
    Pin(Box<PinColumns>),
    Geo(GeoColumns),
    User(UserColumns),
}

struct PinColumns {
    ind: Int64Builder,
    unique_id: StringBuilder,
    title: StringBuilder,
    description: StringBuilder,
    follower_count: Int64Builder,
    poster_name: StringBuilder,
    tag_list: StringBuilder,
    is_image_or_video: StringBuilder,
    image_src: StringBuilder,
    save_location: StringBuilder,
    category: StringBuilder,
}

struct GeoColumns {
    ind: Int64Builder,
    country: StringBuilder,
    coordinates: ListBuilder<Float64Builder>,
    timestamp: TimestampMicrosecondBuilder,
}

struct UserColumns {
    ind: Int64Builder,
    user_name: StringBuilder,
    age: Int64Builder,
    date_joined: TimestampMicrosecondBuilder,
}

fn timestamps() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone(schema::TIMESTAMP_TZ)
}

impl Cleaner {
    /// A cleaner for records of `kind`.
    pub fn new(kind: Kind) -> Result<Self> {
        let table = match kind {
            Kind::Pin => Table::Pin(Box::new(PinColumns {
                ind: Int64Builder::new(),
                unique_id: StringBuilder::new(),
                title: StringBuilder::new(),
                description: StringBuilder::new(),
                follower_count: Int64Builder::new(),
                poster_name: StringBuilder::new(),
                tag_list: StringBuilder::new(),
                is_image_or_video: StringBuilder::new(),
                image_src: StringBuilder::new(),
                save_location: StringBuilder::new(),
                category: StringBuilder::new(),
            })),
            Kind::Geo => Table::Geo(GeoColumns {
                ind: Int64Builder::new(),
                country: StringBuilder::new(),
                coordinates: ListBuilder::new(Float64Builder::new()).with_field(schema::coordinates_item()),
                timestamp: timestamps(),
            }),
            Kind::User => Table::User(UserColumns {
                ind: Int64Builder::new(),
                user_name: StringBuilder::new(),
                age: Int64Builder::new(),
                date_joined: timestamps(),
            }),
        };
        Ok(Cleaner {
            kind,
            table,
            parts: Vec::new(),
            building: 0,
            rows: 0,
            dead: Vec::new(),
            records: 0,
            fingerprinter: Fingerprinter::new(kind)?,
        })
    }

    /// The kind of records this cleaner takes.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Rows accepted so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Records refused so far.
    pub fn dead_letters(&self) -> usize {
        self.dead.len()
    }

    /// Cleans one raw record (one JSON value). Blank input is not a record and is skipped.
    /// Returns whether a row was appended; `origin` is only evaluated for a dead letter.
    pub fn push(&mut self, record: &[u8], origin: impl FnOnce() -> Origin) -> bool {
        let record = record.trim_ascii();
        if record.is_empty() {
            return false;
        }
        self.records += 1;
        let outcome = match &mut self.table {
            Table::Pin(c) => push_pin(c, record),
            Table::Geo(c) => push_geo(c, record),
            Table::User(c) => push_user(c, record),
        };
        match outcome {
            Ok(()) => {
                self.rows += 1;
                self.building += 1;
                true
            }
            Err(reason) => {
                self.dead.push(DeadLetter {
                    kind: self.kind,
                    reason,
                    origin: origin(),
                    record: String::from_utf8_lossy(record).into_owned(),
                });
                false
            }
        }
    }

    /// Cleans the rows of a batch of raw records (columns of `pinpipe_model::schema::raw`, as the
    /// sink's Parquet objects hold them) through the same rules as [`Cleaner::push`], column by
    /// column; a row that fails a rule becomes a dead letter (`origin(row)`, the row as JSON).
    /// Returns the rows appended.
    pub fn push_raw_batch(&mut self, batch: &RecordBatch, origin: impl Fn(usize) -> Origin) -> Result<usize> {
        let clean = crate::columns::clean(self.kind, batch, &origin, &mut self.dead)?;
        if self.building > 0 {
            let built = self.finish_builders()?;
            self.parts.push(built);
        }
        let appended = clean.num_rows();
        self.records += batch.num_rows() as u64;
        self.rows += appended;
        self.parts.push(clean);
        Ok(appended)
    }

    /// The clean rows, their fingerprints and the dead letters; the cleaner starts over empty.
    pub fn finish(&mut self) -> Result<Cleaned> {
        if self.building > 0 {
            let built = self.finish_builders()?;
            self.parts.push(built);
        }
        // Kept apart: joining them would copy every row once more.
        let mut batches = std::mem::take(&mut self.parts);
        batches.retain(|b| b.num_rows() > 0);
        let mut fingerprints = Vec::with_capacity(self.rows);
        for b in &batches {
            fingerprints.extend(self.fingerprinter.fingerprints(b)?);
        }
        self.rows = 0;
        Ok(Cleaned {
            kind: self.kind,
            batches,
            fingerprints,
            dead_letters: std::mem::take(&mut self.dead),
            records: std::mem::take(&mut self.records),
        })
    }

    /// The builders' rows as a batch; the builders start over empty.
    fn finish_builders(&mut self) -> Result<RecordBatch> {
        self.building = 0;
        let columns: Vec<ArrayRef> = match &mut self.table {
            Table::Pin(c) => vec![
                Arc::new(c.ind.finish()),
                Arc::new(c.unique_id.finish()),
                Arc::new(c.title.finish()),
                Arc::new(c.description.finish()),
                Arc::new(c.follower_count.finish()),
                Arc::new(c.poster_name.finish()),
                Arc::new(c.tag_list.finish()),
                Arc::new(c.is_image_or_video.finish()),
                Arc::new(c.image_src.finish()),
                Arc::new(c.save_location.finish()),
                Arc::new(c.category.finish()),
            ],
            Table::Geo(c) => vec![
                Arc::new(c.ind.finish()),
                Arc::new(c.country.finish()),
                Arc::new(c.coordinates.finish()),
                Arc::new(c.timestamp.finish()),
            ],
            Table::User(c) => vec![
                Arc::new(c.ind.finish()),
                Arc::new(c.user_name.finish()),
                Arc::new(c.age.finish()),
                Arc::new(c.date_joined.finish()),
            ],
        };
        Ok(RecordBatch::try_new(schema::clean(self.kind), columns)?)
    }
}

fn parse<'a, T: serde::Deserialize<'a>>(kind: Kind, record: &'a [u8]) -> Result<T, String> {
    serde_json::from_slice(record).map_err(|e| format!("not a valid {kind} record: {e}"))
}

fn push_pin(c: &mut PinColumns, record: &[u8]) -> Result<(), String> {
    append_pin(c, &parse(Kind::Pin, record)?)
}

fn append_pin(c: &mut PinColumns, r: &raw::Pin<'_>) -> Result<(), String> {
    // Every fallible step first, so a refused record leaves the columns untouched.
    let follower_count = match &r.follower_count {
        None => None,
        Some(raw::Count::Int(n)) => Some(*n),
        Some(raw::Count::Text(t)) => rules::follower_count(Some(t))?,
    };
    c.ind.append_value(r.index);
    c.unique_id.append_option(r.unique_id.as_deref());
    c.title.append_option(rules::title(r.title.as_deref()));
    c.description.append_option(rules::description(r.description.as_deref()));
    c.follower_count.append_option(follower_count);
    c.poster_name.append_option(rules::poster_name(r.poster_name.as_deref()));
    c.tag_list.append_option(rules::tag_list(r.tag_list.as_deref()));
    c.is_image_or_video.append_option(r.is_image_or_video.as_deref());
    c.image_src.append_option(rules::image_src(r.image_src.as_deref()));
    c.save_location.append_option(rules::save_location(r.save_location.as_deref()));
    c.category.append_option(r.category.as_deref());
    Ok(())
}

fn push_geo(c: &mut GeoColumns, record: &[u8]) -> Result<(), String> {
    append_geo(c, &parse(Kind::Geo, record)?)
}

fn append_geo(c: &mut GeoColumns, r: &raw::Geo<'_>) -> Result<(), String> {
    let timestamp = rules::timestamp_micros("timestamp", r.timestamp.as_deref())?;
    c.ind.append_value(r.ind);
    c.country.append_option(r.country.as_deref());
    // coordinates = [latitude, longitude]; a missing value is a null element, as Spark's array().
    c.coordinates.values().append_option(r.latitude);
    c.coordinates.values().append_option(r.longitude);
    c.coordinates.append(true);
    c.timestamp.append_option(timestamp);
    Ok(())
}

fn push_user(c: &mut UserColumns, record: &[u8]) -> Result<(), String> {
    append_user(c, &parse(Kind::User, record)?)
}

fn append_user(c: &mut UserColumns, r: &raw::User<'_>) -> Result<(), String> {
    let date_joined = rules::timestamp_micros("date_joined", r.date_joined.as_deref())?;
    c.ind.append_value(r.ind);
    c.user_name.append_option(rules::user_name(r.first_name.as_deref(), r.last_name.as_deref()).as_deref());
    c.age.append_option(r.age);
    c.date_joined.append_option(date_joined);
    Ok(())
}
