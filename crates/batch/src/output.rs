//! Answers as plain rows, and the files of a run folder: `<id>.json` (a JSON array of row
//! objects with exactly the DESIGN.md column names), `<id>.csv`, `dead_letters.jsonl` and
//! `summary.json`.

use std::io::Write;
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type, UInt64Type};
use serde_json::{Map, Value};

use crate::queries::Answer;
use crate::{Error, Result};

/// An answer as JSON values: column names and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows of values (strings, integers, null).
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// The rows as JSON objects keyed by column name.
    pub fn objects(&self) -> Vec<Value> {
        self.rows
            .iter()
            .map(|r| Value::Object(self.columns.iter().cloned().zip(r.iter().cloned()).collect::<Map<_, _>>()))
            .collect()
    }

    /// Index of a column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

fn value(a: &dyn Array, i: usize) -> Value {
    if a.is_null(i) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).into(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).into(),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i).into(),
        DataType::Utf8 => a.as_string::<i32>().value(i).into(),
        DataType::Utf8View => a.as_string_view().value(i).into(),
        DataType::LargeUtf8 => a.as_string::<i64>().value(i).into(),
        _ => datafusion::arrow::util::display::array_value_to_string(a, i).map_or(Value::Null, Value::from),
    }
}

/// The rows of `batches` with the given column names.
pub fn table(columns: &[&str], batches: &[RecordBatch]) -> Table {
    let mut rows = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            rows.push(b.columns().iter().map(|c| value(c.as_ref(), i)).collect());
        }
    }
    Table { columns: columns.iter().map(|c| (*c).to_owned()).collect(), rows }
}

/// An answer's table.
pub fn answer_table(a: &Answer) -> Table {
    table(a.question.columns, &a.batches)
}

/// Writes `<dir>/<id>.json` and `<dir>/<id>.csv`.
pub fn write_answer(dir: &Path, id: &str, t: &Table) -> Result<()> {
    let json_path = dir.join(format!("{id}.json"));
    let mut text = serde_json::to_string_pretty(&Value::Array(t.objects())).unwrap_or_default();
    text.push('\n');
    std::fs::write(&json_path, text).map_err(Error::write(&json_path))?;

    let csv_path = dir.join(format!("{id}.csv"));
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| std::io::Error::other(e.to_string());
    w.write_record(&t.columns).map_err(csv_err).map_err(Error::write(&csv_path))?;
    for r in &t.rows {
        let fields = r.iter().map(|v| match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        w.write_record(fields).map_err(csv_err).map_err(Error::write(&csv_path))?;
    }
    let bytes = w.into_inner().map_err(|e| std::io::Error::other(e.to_string())).map_err(Error::write(&csv_path))?;
    std::fs::write(&csv_path, bytes).map_err(Error::write(&csv_path))
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    std::fs::write(path, text).map_err(Error::write(path))
}

/// The run's dead letters as JSON lines, appended as the run finds them (the file exists, empty,
/// when there are none, so "none" is visible).
pub struct DeadLetterFile {
    path: std::path::PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

impl DeadLetterFile {
    /// Creates (replaces) the file.
    pub fn create(path: &Path) -> Result<Self> {
        let file = std::fs::File::create(path).map_err(Error::write(path))?;
        Ok(DeadLetterFile { path: path.to_owned(), out: std::io::BufWriter::new(file) })
    }

    /// Appends `letters`.
    pub fn append(&mut self, letters: &[pinpipe_transform::DeadLetter]) -> Result<()> {
        for d in letters {
            serde_json::to_writer(&mut self.out, d)
                .map_err(|e| Error::Write { path: self.path.clone(), source: e.into() })?;
            self.out.write_all(b"\n").map_err(Error::write(&self.path))?;
        }
        Ok(())
    }

    /// Flushes the file.
    pub fn finish(mut self) -> Result<()> {
        self.out.flush().map_err(Error::write(&self.path))
    }
}

/// A plain-text table for the terminal.
pub fn text_table(t: &Table) -> String {
    let cells: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => "null".into(),
                    o => o.to_string(),
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = t.columns.iter().map(|c| c.chars().count()).collect();
    for r in &cells {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let numeric: Vec<bool> =
        (0..t.columns.len()).map(|i| t.rows.iter().all(|r| r[i].is_number() || r[i].is_null())).collect();
    let line = |vals: &[String], out: &mut String| {
        let parts: Vec<String> = vals
            .iter()
            .enumerate()
            .map(
                |(i, v)| if numeric[i] { format!("{v:>w$}", w = widths[i]) } else { format!("{v:<w$}", w = widths[i]) },
            )
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    let mut out = String::new();
    line(&t.columns, &mut out);
    line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(), &mut out);
    for r in &cells {
        line(r, &mut out);
    }
    out
}
