//! Raw batches (`pinpipe_model::schema::raw`, as the sink's Parquet objects hold them) cleaned
//! column by column, through the same value rules ([`crate::rules`]) as a JSON record.
//!
//! Text is handled as string views (`Utf8View`: the Parquet reader points them into its pages
//! instead of copying every string): a rule that only turns values into nulls (the
//! placeholders) keeps the column's views and adds nulls ([`text`]); a rule that rewrites a
//! value (`save_location`'s prefix) builds a new column; typed columns (counts, timestamps,
//! coordinates, user names) are built from the rules' outputs. A row that fails a rule (no key,
//! a count or time that does not parse) becomes a dead letter with the first reason the
//! row-by-row path would give, and is left out of every column. The rows come out in
//! [`view_schema`]: the clean table's columns with text as views, so that dropping duplicate
//! rows copies views, not strings; [`crate::Cleaned::into_parts`] gives them the clean table's
//! types. They equal what [`crate::Cleaner::push`] makes of the same records as JSON, row for row
//! (tested in `crate::tests`).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, RecordBatch, StringViewArray,
    TimestampMicrosecondArray,
};
use arrow_buffer::{BooleanBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pinpipe_model::{Kind, schema};
use serde_json::{Map, Value};

use crate::dead_letter::{DeadLetter, Origin};
use crate::{Error, Result, rules};

/// The clean table's schema with its text columns as string views.
pub(crate) fn view_schema(kind: Kind) -> SchemaRef {
    with_string_views(&schema::clean(kind))
}

/// A text field as a string view field; other fields as they are.
fn as_view(field: Field) -> Field {
    match field.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 => field.with_data_type(DataType::Utf8View),
        _ => field,
    }
}

/// `schema` with its text columns as string views: what to ask a Parquet reader for.
pub fn with_string_views(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema.fields().iter().map(|f| as_view(f.as_ref().clone())).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Cleans the rows of `batch`, a batch of raw records of `kind`: the clean rows (schema
/// [`view_schema`]`(kind)`), and a dead letter in `dead` (in row order) for every
/// row a rule refused, from `origin(row)`.
pub(crate) fn clean(
    kind: Kind,
    batch: &RecordBatch,
    origin: &dyn Fn(usize) -> Origin,
    dead: &mut Vec<DeadLetter>,
) -> Result<RecordBatch> {
    let raw = RawColumns::new(kind, batch)?;
    let mut refusals = Refusals::default();
    let columns = match kind {
        Kind::Pin => pin(&raw, &mut refusals)?,
        Kind::Geo => geo(&raw, &mut refusals)?,
        Kind::User => user(&raw, &mut refusals),
    };
    let columns = if refusals.reasons.is_empty() {
        columns
    } else {
        let keep = BooleanArray::from_iter((0..batch.num_rows()).map(|i| Some(!refusals.reasons.contains_key(&i))));
        columns.iter().map(|c| arrow_select::filter::filter(c, &keep)).collect::<Result<_, _>>()?
    };
    for (row, reason) in refusals.reasons {
        dead.push(DeadLetter { kind, reason, origin: origin(row), record: raw.json(row) });
    }
    Ok(RecordBatch::try_new(view_schema(kind), columns)?)
}

/// The first reason each refused row was refused for (rules are applied in the row-by-row
/// path's order, so a row refused twice keeps the reason that path would give).
#[derive(Default)]
struct Refusals {
    reasons: BTreeMap<usize, String>,
}

impl Refusals {
    fn refuse(&mut self, row: usize, reason: String) {
        self.reasons.entry(row).or_insert(reason);
    }

    /// The key column as is; a row without its key is refused.
    fn key(&mut self, keys: &Int64Array, name: &str) -> ArrayRef {
        for row in (0..keys.len()).filter(|&i| keys.is_null(i)) {
            self.refuse(row, format!("the record has no {name}"));
        }
        Arc::new(keys.clone())
    }

    /// A fallible rule over each value of a text column; a refused value refuses its row.
    fn typed<T>(
        &mut self,
        values: &StringViewArray,
        rule: impl Fn(Option<&str>) -> Result<Option<T>, String>,
    ) -> Vec<Option<T>> {
        (0..values.len())
            .map(|i| {
                rule(value(values, i)).unwrap_or_else(|reason| {
                    self.refuse(i, reason);
                    None
                })
            })
            .collect()
    }
}

/// A text column through a rule that keeps, drops (null) or rewrites each value: the column's
/// own views with more nulls when the rule rewrites nothing, else a new column.
fn text(values: &StringViewArray, rule: impl Fn(Option<&str>) -> Option<&str>) -> Result<ArrayRef> {
    let mut rewritten = false;
    let dropped = BooleanBuffer::collect_bool(values.len(), |i| {
        if values.is_null(i) {
            return false;
        }
        let value = values.value(i);
        match rule(Some(value)) {
            None => true,
            Some(out) => {
                rewritten |= !std::ptr::eq(out, value);
                false
            }
        }
    });
    Ok(if rewritten {
        Arc::new(values.iter().map(rule).collect::<StringViewArray>())
    } else {
        arrow_select::nullif::nullif(values, &BooleanArray::new(dropped, None))?
    })
}

/// The value of row `i` of a text column.
fn value(a: &StringViewArray, i: usize) -> Option<&str> {
    a.is_valid(i).then(|| a.value(i))
}

fn timestamps(values: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values).with_timezone(schema::TIMESTAMP_TZ))
}

fn pin(raw: &RawColumns<'_>, refusals: &mut Refusals) -> Result<Vec<ArrayRef>> {
    let ind = refusals.key(raw.ints(0), "index");
    let follower_count = refusals.typed(raw.strings(5), rules::follower_count);
    Ok(vec![
        ind,
        Arc::clone(&raw.columns[1]),
        text(raw.strings(2), rules::title)?,
        text(raw.strings(3), rules::description)?,
        Arc::new(Int64Array::from(follower_count)),
        text(raw.strings(4), rules::poster_name)?,
        text(raw.strings(6), rules::tag_list)?,
        Arc::clone(&raw.columns[7]),
        text(raw.strings(8), rules::image_src)?,
        text(raw.strings(10), rules::save_location)?,
        Arc::clone(&raw.columns[11]),
    ])
}

fn geo(raw: &RawColumns<'_>, refusals: &mut Refusals) -> Result<Vec<ArrayRef>> {
    let ind = refusals.key(raw.ints(0), "ind");
    let timestamp = refusals.typed(raw.strings(1), |v| rules::timestamp_micros("timestamp", v));
    // coordinates = [latitude, longitude]; a missing value is a null element, as Spark's array().
    let (latitude, longitude) = (raw.floats(2), raw.floats(3));
    let rows = latitude.len();
    let pairs: Float64Array = (0..rows)
        .flat_map(|i| {
            [latitude.is_valid(i).then(|| latitude.value(i)), longitude.is_valid(i).then(|| longitude.value(i))]
        })
        .collect();
    let coordinates = ListArray::try_new(
        schema::coordinates_item(),
        OffsetBuffer::from_lengths(std::iter::repeat_n(2, rows)),
        Arc::new(pairs),
        None,
    )?;
    Ok(vec![ind, Arc::clone(&raw.columns[4]), Arc::new(coordinates), timestamps(timestamp)])
}

fn user(raw: &RawColumns<'_>, refusals: &mut Refusals) -> Vec<ArrayRef> {
    let ind = refusals.key(raw.ints(0), "ind");
    let date_joined = refusals.typed(raw.strings(4), |v| rules::timestamp_micros("date_joined", v));
    let (first, last) = (raw.strings(1), raw.strings(2));
    let user_name: StringViewArray =
        (0..first.len()).map(|i| rules::user_name(value(first, i), value(last, i))).collect();
    vec![ind, Arc::new(user_name), Arc::clone(&raw.columns[3]), timestamps(date_joined)]
}

/// The raw columns of a batch, in the raw schema's order and types, text as string views.
pub(crate) struct RawColumns<'a> {
    batch: &'a RecordBatch,
    /// The columns by raw field, cast to the raw schema's types.
    columns: Vec<ArrayRef>,
}

impl<'a> RawColumns<'a> {
    /// The raw columns of `batch`, which must include the raw fields of `kind` (by name; other
    /// columns are ignored, numbers and text of another Arrow type are cast).
    pub(crate) fn new(kind: Kind, batch: &'a RecordBatch) -> Result<Self> {
        let raw = with_string_views(&schema::raw(kind));
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
        Ok(RawColumns { batch, columns })
    }

    fn strings(&self, c: usize) -> &StringViewArray {
        self.columns[c].as_string_view()
    }

    fn ints(&self, c: usize) -> &Int64Array {
        self.columns[c].as_primitive::<Int64Type>()
    }

    fn floats(&self, c: usize) -> &Float64Array {
        self.columns[c].as_primitive::<Float64Type>()
    }

    /// The row as a JSON object, for a dead letter.
    pub(crate) fn json(&self, row: usize) -> String {
        let mut map = Map::new();
        for (field, column) in self.batch.schema().fields().iter().zip(self.batch.columns()) {
            let value = match column {
                c if c.is_null(row) => Value::Null,
                c => match c.data_type() {
                    DataType::Int64 => Value::from(c.as_primitive::<Int64Type>().value(row)),
                    DataType::Float64 => Value::from(c.as_primitive::<Float64Type>().value(row)),
                    DataType::Utf8 => Value::from(c.as_string::<i32>().value(row)),
                    DataType::Utf8View => Value::from(c.as_string_view().value(row)),
                    other => Value::from(format!("<{other}>")),
                },
            };
            map.insert(field.name().clone(), value);
        }
        Value::Object(map).to_string()
    }
}
