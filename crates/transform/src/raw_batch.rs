//! Raw records as Arrow columns (`pinpipe_model::schema::raw`): how the sink writes a Parquet
//! object's rows ([`RawBuilder`], from the JSON records of the log) and how the batch job reads
//! them back into the cleaning rules ([`RawRows`]: each row as the same borrowed raw record the
//! JSON path parses, so both paths share one set of rules).
//!
//! A topic of no known kind is written as one text column, `value` ([`RawBuilder::values`]).

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pinpipe_model::{Kind, schema};
use serde_json::{Map, Value};

use crate::raw::{self, Count};
use crate::{Error, Result};

/// The schema of a topic of no known kind: its records' text.
pub fn values_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("value", DataType::Utf8, false)]))
}

/// Builds a batch of raw records of one kind (or of text values) from JSON records.
pub struct RawBuilder {
    kind: Option<Kind>,
    columns: Vec<Column>,
    rows: usize,
}

enum Column {
    Int(Int64Builder),
    Float(Float64Builder),
    Text(StringBuilder),
}

impl Column {
    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Int(b) => Arc::new(b.finish()),
            Column::Float(b) => Arc::new(b.finish()),
            Column::Text(b) => Arc::new(b.finish()),
        }
    }
}

impl RawBuilder {
    /// A builder of raw records of `kind`.
    pub fn new(kind: Kind) -> Self {
        let columns = schema::raw(kind)
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Int64 => Column::Int(Int64Builder::new()),
                DataType::Float64 => Column::Float(Float64Builder::new()),
                _ => Column::Text(StringBuilder::new()),
            })
            .collect();
        RawBuilder { kind: Some(kind), columns, rows: 0 }
    }

    /// A builder of text values (a topic of no known kind).
    pub fn values() -> Self {
        RawBuilder { kind: None, columns: vec![Column::Text(StringBuilder::new())], rows: 0 }
    }

    /// The schema of the batches it builds.
    pub fn schema(&self) -> SchemaRef {
        self.kind.map_or_else(values_schema, schema::raw)
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Adds a record; `Err` (nothing added) when it is not a record of the builder's kind: not
    /// JSON, a missing key field, a value of the wrong type (or, for text values, not UTF-8).
    pub fn push(&mut self, record: &[u8]) -> std::result::Result<(), String> {
        match self.kind {
            None => {
                let text = std::str::from_utf8(record).map_err(|e| format!("not UTF-8 text: {e}"))?;
                self.text(0, Some(text));
            }
            Some(Kind::Pin) => {
                let r: raw::Pin<'_> = parse(Kind::Pin, record)?;
                let follower_count = r.follower_count.as_ref().map(|c| match c {
                    Count::Int(n) => Cow::Owned(n.to_string()),
                    Count::Text(t) => Cow::Borrowed(t.as_ref()),
                });
                self.int(0, Some(r.index));
                self.text(1, r.unique_id.as_deref());
                self.text(2, r.title.as_deref());
                self.text(3, r.description.as_deref());
                self.text(4, r.poster_name.as_deref());
                self.text(5, follower_count.as_deref());
                self.text(6, r.tag_list.as_deref());
                self.text(7, r.is_image_or_video.as_deref());
                self.text(8, r.image_src.as_deref());
                self.int(9, r.downloaded);
                self.text(10, r.save_location.as_deref());
                self.text(11, r.category.as_deref());
            }
            Some(Kind::Geo) => {
                let r: raw::Geo<'_> = parse(Kind::Geo, record)?;
                self.int(0, Some(r.ind));
                self.text(1, r.timestamp.as_deref());
                self.float(2, r.latitude);
                self.float(3, r.longitude);
                self.text(4, r.country.as_deref());
            }
            Some(Kind::User) => {
                let r: raw::User<'_> = parse(Kind::User, record)?;
                self.int(0, Some(r.ind));
                self.text(1, r.first_name.as_deref());
                self.text(2, r.last_name.as_deref());
                self.int(3, r.age);
                self.text(4, r.date_joined.as_deref());
            }
        }
        self.rows += 1;
        Ok(())
    }

    fn int(&mut self, i: usize, v: Option<i64>) {
        if let Some(Column::Int(b)) = self.columns.get_mut(i) {
            b.append_option(v);
        }
    }

    fn float(&mut self, i: usize, v: Option<f64>) {
        if let Some(Column::Float(b)) = self.columns.get_mut(i) {
            b.append_option(v);
        }
    }

    fn text(&mut self, i: usize, v: Option<&str>) {
        if let Some(Column::Text(b)) = self.columns.get_mut(i) {
            b.append_option(v);
        }
    }

    /// The rows so far as a batch; the builder starts over empty.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = self.columns.iter_mut().map(Column::finish).collect();
        self.rows = 0;
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }
}

fn parse<'a, T: serde::Deserialize<'a>>(kind: Kind, record: &'a [u8]) -> std::result::Result<T, String> {
    serde_json::from_slice(record).map_err(|e| format!("not a valid {kind} record: {e}"))
}

/// The rows of a batch of raw records, each as the raw record the JSON path parses.
pub(crate) struct RawRows<'a> {
    batch: &'a RecordBatch,
    /// The columns by raw field, cast to the raw schema's types.
    columns: Vec<ArrayRef>,
}

impl<'a> RawRows<'a> {
    /// A view of `batch`, whose columns must include the raw fields of `kind` (by name;
    /// other columns are ignored, numbers and text of another Arrow type are cast).
    pub(crate) fn new(kind: Kind, batch: &'a RecordBatch) -> Result<Self> {
        let raw = schema::raw(kind);
        let mut columns = Vec::with_capacity(raw.fields().len());
        for field in raw.fields() {
            let column = batch
                .column_by_name(field.name())
                .ok_or_else(|| Error::Schema(format!("a raw {kind} batch has no column {:?}", field.name())))?;
            let column = if column.data_type() == field.data_type() {
                Arc::clone(column)
            } else {
                arrow_cast::cast(column, field.data_type())?
            };
            columns.push(column);
        }
        Ok(RawRows { batch, columns })
    }

    fn text(&self, c: usize, row: usize) -> Option<&str> {
        let a: &StringArray = self.columns[c].as_string();
        a.is_valid(row).then(|| a.value(row))
    }

    fn int(&self, c: usize, row: usize) -> Option<i64> {
        let a: &Int64Array = self.columns[c].as_primitive::<Int64Type>();
        a.is_valid(row).then(|| a.value(row))
    }

    fn float(&self, c: usize, row: usize) -> Option<f64> {
        let a: &Float64Array = self.columns[c].as_primitive::<Float64Type>();
        a.is_valid(row).then(|| a.value(row))
    }

    fn key(&self, c: usize, row: usize, name: &str) -> std::result::Result<i64, String> {
        self.int(c, row).ok_or_else(|| format!("the record has no {name}"))
    }

    pub(crate) fn pin(&self, row: usize) -> std::result::Result<raw::Pin<'_>, String> {
        let text = |c| self.text(c, row).map(Cow::Borrowed);
        Ok(raw::Pin {
            index: self.key(0, row, "index")?,
            unique_id: text(1),
            title: text(2),
            description: text(3),
            poster_name: text(4),
            follower_count: text(5).map(Count::Text),
            tag_list: text(6),
            is_image_or_video: text(7),
            image_src: text(8),
            downloaded: self.int(9, row),
            save_location: text(10),
            category: text(11),
        })
    }

    pub(crate) fn geo(&self, row: usize) -> std::result::Result<raw::Geo<'_>, String> {
        Ok(raw::Geo {
            ind: self.key(0, row, "ind")?,
            timestamp: self.text(1, row).map(Cow::Borrowed),
            latitude: self.float(2, row),
            longitude: self.float(3, row),
            country: self.text(4, row).map(Cow::Borrowed),
        })
    }

    pub(crate) fn user(&self, row: usize) -> std::result::Result<raw::User<'_>, String> {
        Ok(raw::User {
            ind: self.key(0, row, "ind")?,
            first_name: self.text(1, row).map(Cow::Borrowed),
            last_name: self.text(2, row).map(Cow::Borrowed),
            age: self.int(3, row),
            date_joined: self.text(4, row).map(Cow::Borrowed),
        })
    }

    /// The row as a JSON object, for a dead letter.
    pub(crate) fn json(&self, row: usize) -> String {
        let mut map = Map::new();
        for (field, column) in self.batch.schema().fields().iter().zip(0..) {
            let _ = column;
            let value = match self.batch.column(column) {
                c if c.is_null(row) => Value::Null,
                c => match c.data_type() {
                    DataType::Int64 => Value::from(c.as_primitive::<Int64Type>().value(row)),
                    DataType::Float64 => Value::from(c.as_primitive::<Float64Type>().value(row)),
                    DataType::Utf8 => Value::from(c.as_string::<i32>().value(row)),
                    other => Value::from(format!("<{other}>")),
                },
            };
            map.insert(field.name().clone(), value);
        }
        Value::Object(map).to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Cleaner, Origin};

    #[test]
    fn json_records_become_raw_rows_that_clean_as_the_json_does() {
        let records: [&[u8]; 4] = [
            br#"{"index":7,"unique_id":"u","title":"T","description":"Untitled","poster_name":"P","follower_count":"51k","tag_list":"a,b","is_image_or_video":"image","image_src":"https://x","downloaded":1,"save_location":"Local save in /data/art","category":"art"}"#,
            br#"{"index":8,"follower_count":305,"extra":"ignored"}"#,
            br#"{"index":9,"follower_count":"lots"}"#,
            br#"{"title":"no index"}"#,
        ];
        let mut builder = RawBuilder::new(Kind::Pin);
        let mut refused = 0;
        for r in records {
            if builder.push(r).is_err() {
                refused += 1;
            }
        }
        // Only the record without its key field is refused at the sink: a bad follower count is
        // text the raw schema holds; the cleaning rules refuse it later, as they refuse the JSON.
        assert_eq!((builder.len(), refused), (3, 1));
        let batch = builder.finish().unwrap();
        assert_eq!(batch.schema(), schema::raw(Kind::Pin));

        let mut from_rows = Cleaner::new(Kind::Pin).unwrap();
        from_rows
            .push_raw_batch(&batch, |row| Origin::Object { path: "o.parquet".into(), line: row as u64 + 1 })
            .unwrap();
        let from_rows = from_rows.finish().unwrap();
        let mut from_json = Cleaner::new(Kind::Pin).unwrap();
        for r in &records[..3] {
            from_json.push(r, || Origin::Object { path: "o.json".into(), line: 0 });
        }
        let from_json = from_json.finish().unwrap();
        assert_eq!(from_rows.batch, from_json.batch);
        assert_eq!(from_rows.fingerprints, from_json.fingerprints);
        assert_eq!(from_rows.dead_letters.len(), 1);
        let dead = &from_rows.dead_letters[0];
        assert!(dead.reason.contains("lots"), "{}", dead.reason);
        assert_eq!(dead.origin, Origin::Object { path: "o.parquet".into(), line: 3 });
        let row: Value = serde_json::from_str(&dead.record).unwrap();
        assert_eq!((row["index"].as_i64(), row["follower_count"].as_str()), (Some(9), Some("lots")));
    }

    #[test]
    fn geo_and_user_rows_and_text_values() {
        let mut geo = RawBuilder::new(Kind::Geo);
        geo.push(br#"{"ind":1,"timestamp":"2020-08-28T03:52:47","latitude":-89.9,"longitude":10,"country":"Albania"}"#)
            .unwrap();
        assert!(geo.push(br#"{"ind":2,"latitude":"north"}"#).is_err());
        let batch = geo.finish().unwrap();
        let rows = RawRows::new(Kind::Geo, &batch).unwrap();
        let g = rows.geo(0).unwrap();
        assert_eq!(
            (g.ind, g.latitude, g.longitude, g.country.as_deref()),
            (1, Some(-89.9), Some(10.0), Some("Albania"))
        );

        let mut values = RawBuilder::values();
        values.push(b"{\"any\":1}").unwrap();
        assert!(values.push(&[0xff, 0xfe]).is_err());
        let batch = values.finish().unwrap();
        assert_eq!((batch.num_rows(), batch.schema()), (1, values_schema()));
        assert!(RawRows::new(Kind::User, &batch).is_err(), "a batch without the raw columns is refused");
    }
}
