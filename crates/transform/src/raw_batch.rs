//! Raw records as Arrow columns (`pinpipe_model::schema::raw`): how the sink writes a Parquet
//! object's rows ([`RawBuilder`], from the JSON records of the log). The batch job cleans such
//! batches column by column through the same rules ([`crate::Cleaner::push_raw_batch`]).
//!
//! A topic of no known kind is written as one text column, `value` ([`RawBuilder::values`]).

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pinpipe_model::{Kind, schema};

use crate::Result;
use crate::raw::{self, Count};

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};
    use serde_json::Value;

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
        assert_eq!(from_rows.batch().unwrap(), from_json.batch().unwrap());
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
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(
            (
                batch.column(0).as_primitive::<Int64Type>().value(0),
                batch.column(1).as_string::<i32>().value(0),
                batch.column(2).as_primitive::<Float64Type>().value(0),
                batch.column(3).as_primitive::<Float64Type>().value(0),
                batch.column(4).as_string::<i32>().value(0),
            ),
            (1, "2020-08-28T03:52:47", -89.9, 10.0, "Albania")
        );

        let mut values = RawBuilder::values();
        values.push(b"{\"any\":1}").unwrap();
        assert!(values.push(&[0xff, 0xfe]).is_err());
        let batch = values.finish().unwrap();
        assert_eq!((batch.num_rows(), batch.schema()), (1, values_schema()));
        let refused = Cleaner::new(Kind::User).unwrap().push_raw_batch(&batch, |_| unreachable!());
        assert!(refused.is_err(), "a batch without the raw columns is refused");
    }
}
