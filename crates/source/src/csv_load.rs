//! Reader of the classic `db_data/` CSV files: `pinterest_data.csv`, `geolocation_data.csv`,
//! `user_data.csv`, each with a leading unnamed pandas index column and then the table's columns
//! (in any order). Empty cells are NULL. The files are read in lockstep so that row r of each
//! must carry the same key; a file that disagrees is an error naming the line.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use pinpipe_model::{Kind, RawGeo, RawPin, RawUser, time};

use crate::sql::{Col, columns};
use crate::{Error, Result};

/// The CSV files found in a directory.
#[derive(Debug, Clone)]
pub struct CsvFiles {
    /// `geolocation_data.csv`.
    pub geo: PathBuf,
    /// `user_data.csv`.
    pub user: PathBuf,
    /// `pinterest_data.csv`, which is not public; when absent, pins are generated.
    pub pin: Option<PathBuf>,
}

impl CsvFiles {
    /// Looks for the classic file names in `dir`.
    pub fn find(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::CsvDir { dir: dir.to_owned(), reason: "not a directory".into() });
        }
        let file = |kind: Kind| {
            let p = dir.join(format!("{}.csv", kind.source_table()));
            p.is_file().then_some(p)
        };
        let missing = |kind: Kind| Error::CsvDir {
            dir: dir.to_owned(),
            reason: format!(
                "{}.csv is missing (expected geolocation_data.csv, user_data.csv and optionally pinterest_data.csv)",
                kind.source_table()
            ),
        };
        Ok(CsvFiles {
            geo: file(Kind::Geo).ok_or_else(|| missing(Kind::Geo))?,
            user: file(Kind::User).ok_or_else(|| missing(Kind::User))?,
            pin: file(Kind::Pin),
        })
    }

    /// Opens the files for one pass over their rows in lockstep (headers are checked here).
    pub fn rows(&self) -> Result<Lockstep> {
        Ok(Lockstep {
            geo: TableReader::open(&self.geo, Kind::Geo)?,
            user: TableReader::open(&self.user, Kind::User)?,
            pin: self.pin.as_deref().map(|p| TableReader::open(p, Kind::Pin)).transpose()?,
        })
    }
}

/// Row r of every file at once, checked to carry the same key.
pub struct Lockstep {
    geo: TableReader,
    user: TableReader,
    pin: Option<TableReader>,
}

impl Lockstep {
    /// The next row: the pin (when there is a pin file), the geo and the user rows; `None` at the
    /// end. Files of different lengths or with different keys on the same row are errors.
    pub fn next_row(&mut self) -> Result<Option<(Option<RawPin>, RawGeo, RawUser)>> {
        let geo = self.geo.next_geo()?;
        let user = self.user.next_user()?;
        let pin = match &mut self.pin {
            Some(r) => Some(r.next_pin()?),
            None => None,
        };
        let ((gline, geo), (uline, user)) = match (geo, user) {
            (Some(g), Some(u)) => (g, u),
            (None, None) => {
                return match pin {
                    Some(Some((line, _))) => Err(self.mismatch_pin(line, "has more rows than geolocation_data.csv")),
                    _ => Ok(None),
                };
            }
            (Some((line, _)), None) => return Err(mismatch(self.geo.path(), line, "has more rows than user_data.csv")),
            (None, Some((line, _))) => {
                return Err(mismatch(self.user.path(), line, "has more rows than geolocation_data.csv"));
            }
        };
        if user.ind != geo.ind {
            let why = format!("ind {} where geolocation_data.csv has ind {} on the same row", user.ind, geo.ind);
            return Err(mismatch(self.user.path(), uline, &why));
        }
        let pin = match pin {
            None => None,
            Some(None) => return Err(mismatch(self.geo.path(), gline, "has more rows than pinterest_data.csv")),
            Some(Some((line, p))) if p.index != geo.ind => {
                let why = format!("index {} where geolocation_data.csv has ind {} on the same row", p.index, geo.ind);
                return Err(self.mismatch_pin(line, &why));
            }
            Some(Some((_, p))) => Some(p),
        };
        Ok(Some((pin, geo, user)))
    }

    fn mismatch_pin(&self, line: u64, reason: &str) -> Error {
        let path = self.pin.as_ref().map_or(self.geo.path(), TableReader::path);
        mismatch(path, line, reason)
    }
}

fn mismatch(path: &Path, line: u64, reason: &str) -> Error {
    Error::Csv { path: path.to_owned(), line, reason: reason.to_owned() }
}

fn open(path: &Path) -> Result<csv::Reader<File>> {
    let f = File::open(path).map_err(|e| Error::Io { path: path.to_owned(), source: e })?;
    Ok(csv::ReaderBuilder::new().has_headers(true).from_reader(f))
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let reason = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    };
    Error::Csv { path: path.to_owned(), line, reason }
}

/// Reads one table's CSV file record by record.
pub struct TableReader {
    path: PathBuf,
    kind: Kind,
    reader: csv::Reader<File>,
    /// For each contract column, its position in the file.
    positions: Vec<usize>,
    record: csv::StringRecord,
}

/// A parsed value of one cell.
enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
    Float(Option<f64>),
    Time(Option<chrono::NaiveDateTime>),
}

impl TableReader {
    /// Opens `path` as the CSV of `kind` and checks its header.
    pub fn open(path: &Path, kind: Kind) -> Result<Self> {
        let mut reader = open(path)?;
        let header = reader.headers().map_err(|e| csv_error(path, e))?.clone();
        let bad = |reason: String| Error::Csv { path: path.to_owned(), line: 1, reason };
        let mut at: HashMap<&str, usize> = HashMap::new();
        for (i, name) in header.iter().enumerate() {
            let name = name.trim();
            // The pandas index column: unnamed ("" or "Unnamed: 0"), and only first.
            if i == 0 && (name.is_empty() || name.starts_with("Unnamed")) {
                continue;
            }
            if !columns(kind).iter().any(|(c, _)| *c == name) {
                return Err(bad(format!("unexpected column {name:?} in the header of a {} file", kind.source_table())));
            }
            if at.insert(name, i).is_some() {
                return Err(bad(format!("column {name:?} appears twice")));
            }
        }
        let mut positions = Vec::new();
        for (c, _) in columns(kind) {
            positions.push(*at.get(c).ok_or_else(|| bad(format!("column {c:?} is missing from the header")))?);
        }
        Ok(TableReader { path: path.to_owned(), kind, reader, positions, record: csv::StringRecord::new() })
    }

    /// Reads the next record's cells; `None` at the end of the file. Returns the line number too.
    fn next_cells(&mut self) -> Result<Option<(u64, Vec<Cell>)>> {
        if !self.reader.read_record(&mut self.record).map_err(|e| csv_error(&self.path, e))? {
            return Ok(None);
        }
        let line = self.record.position().map(|p| p.line()).unwrap_or(0);
        let mut cells = Vec::with_capacity(self.positions.len());
        for (&(name, col), &pos) in columns(self.kind).iter().zip(&self.positions) {
            let raw = self.record.get(pos).unwrap_or_default().trim();
            let bad = |what: &str| Error::Csv {
                path: self.path.clone(),
                line,
                reason: format!("column {name}: {raw:?} is not {what}"),
            };
            let empty = raw.is_empty();
            cells.push(match col {
                Col::Key => {
                    if empty {
                        return Err(bad("a row key (it is empty)"));
                    }
                    Cell::Int(Some(raw.parse().map_err(|_| bad("an integer"))?))
                }
                Col::Int => {
                    Cell::Int(if empty { None } else { Some(parse_int(raw).ok_or_else(|| bad("an integer"))?) })
                }
                Col::Float => Cell::Float(if empty {
                    None
                } else {
                    Some(raw.parse::<f64>().ok().filter(|f| f.is_finite()).ok_or_else(|| bad("a number"))?)
                }),
                Col::Time => {
                    Cell::Time(if empty { None } else { Some(time::parse(raw).map_err(|_| bad("a timestamp"))?) })
                }
                Col::Text => Cell::Text((!empty).then(|| raw.to_owned())),
            });
        }
        Ok(Some((line, cells)))
    }
}

/// pandas writes integer columns holding NaN as floats (`20.0`); accept those when whole.
fn parse_int(raw: &str) -> Option<i64> {
    raw.parse::<i64>()
        .ok()
        .or_else(|| raw.parse::<f64>().ok().filter(|f| f.fract() == 0.0 && f.abs() < 9e15).map(|f| f as i64))
}

fn text(c: &mut Cell) -> Option<String> {
    match c {
        Cell::Text(t) => t.take(),
        _ => None,
    }
}
fn int(c: &Cell) -> Option<i64> {
    match c {
        Cell::Int(v) => *v,
        _ => None,
    }
}
fn float(c: &Cell) -> Option<f64> {
    match c {
        Cell::Float(v) => *v,
        _ => None,
    }
}
fn when(c: &Cell) -> Option<chrono::NaiveDateTime> {
    match c {
        Cell::Time(v) => *v,
        _ => None,
    }
}

impl TableReader {
    /// Next pin row with its line.
    pub fn next_pin(&mut self) -> Result<Option<(u64, RawPin)>> {
        Ok(self.next_cells()?.map(|(line, mut c)| {
            (
                line,
                RawPin {
                    index: int(&c[0]).unwrap_or_default(),
                    unique_id: text(&mut c[1]),
                    title: text(&mut c[2]),
                    description: text(&mut c[3]),
                    poster_name: text(&mut c[4]),
                    follower_count: text(&mut c[5]),
                    tag_list: text(&mut c[6]),
                    is_image_or_video: text(&mut c[7]),
                    image_src: text(&mut c[8]),
                    downloaded: int(&c[9]),
                    save_location: text(&mut c[10]),
                    category: text(&mut c[11]),
                },
            )
        }))
    }

    /// Next geo row with its line.
    pub fn next_geo(&mut self) -> Result<Option<(u64, RawGeo)>> {
        Ok(self.next_cells()?.map(|(line, mut c)| {
            (
                line,
                RawGeo {
                    ind: int(&c[0]).unwrap_or_default(),
                    timestamp: when(&c[1]),
                    latitude: float(&c[2]),
                    longitude: float(&c[3]),
                    country: text(&mut c[4]),
                },
            )
        }))
    }

    /// Next user row with its line.
    pub fn next_user(&mut self) -> Result<Option<(u64, RawUser)>> {
        Ok(self.next_cells()?.map(|(line, mut c)| {
            (
                line,
                RawUser {
                    ind: int(&c[0]).unwrap_or_default(),
                    first_name: text(&mut c[1]),
                    last_name: text(&mut c[2]),
                    age: int(&c[3]),
                    date_joined: when(&c[4]),
                },
            )
        }))
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::File::create(&p).unwrap().write_all(body.as_bytes()).unwrap();
        p
    }

    #[test]
    fn reads_pandas_style_files_with_any_column_order() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "user_data.csv",
            ",age,ind,first_name,last_name,date_joined\n0,20.0,0,Adam,\"Acosta, Jr\",2015-10-21 21:26:45\n1,,1,,Li,\n",
        );
        let mut r = TableReader::open(&p, Kind::User).unwrap();
        let (line, u) = r.next_user().unwrap().unwrap();
        assert_eq!(line, 2);
        assert_eq!(u.last_name.as_deref(), Some("Acosta, Jr"));
        assert_eq!(u.age, Some(20));
        assert_eq!(u.date_joined, Some(time::parse("2015-10-21T21:26:45").unwrap()));
        let (_, u) = r.next_user().unwrap().unwrap();
        assert_eq!((u.ind, u.first_name, u.age, u.date_joined), (1, None, None, None));
        assert!(r.next_user().unwrap().is_none());
    }

    #[test]
    fn malformed_files_name_file_line_and_reason() {
        let d = tempfile::tempdir().unwrap();
        let cases = [
            (",ind,timestamp,latitude,longitude\n", "line 1: column \"country\" is missing"),
            (",ind,timestamp,latitude,longitude,country,extra\n", "unexpected column \"extra\""),
            (
                ",ind,timestamp,latitude,longitude,country\n0,0,2019-01-01 07:21:13,1.0,2.0,X\n1,1,yesterday,1.0,2.0,X\n",
                "line 3: column timestamp: \"yesterday\" is not a timestamp",
            ),
            (
                ",ind,timestamp,latitude,longitude,country\n0,x,2019-01-01 07:21:13,1.0,2.0,X\n",
                "line 2: column ind: \"x\" is not an integer",
            ),
            (
                ",ind,timestamp,latitude,longitude,country\n0,0,2019-01-01 07:21:13,1.0,X\n",
                "line 2: 5 fields where the header has 6",
            ),
            (
                ",ind,timestamp,latitude,longitude,country\n0,0,2019-01-01 07:21:13,north,2.0,X\n",
                "column latitude: \"north\" is not a number",
            ),
        ];
        for (body, needle) in cases {
            let p = write(d.path(), "geolocation_data.csv", body);
            let err = TableReader::open(&p, Kind::Geo).and_then(|mut r| {
                loop {
                    if r.next_geo()?.is_none() {
                        break Ok(());
                    }
                }
            });
            let msg = err.expect_err(needle).to_string();
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
            assert!(msg.contains("geolocation_data.csv"), "{msg}");
        }
    }

    #[test]
    fn files_must_agree_row_by_row() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "geolocation_data.csv",
            ",ind,timestamp,latitude,longitude,country\n0,0,2019-01-01 07:21:13,1.0,2.0,X\n1,1,2019-01-01 07:21:13,1.0,2.0,X\n",
        );
        write(
            d.path(),
            "user_data.csv",
            ",ind,first_name,last_name,age,date_joined\n0,0,A,B,20,2015-10-21 21:26:45\n1,2,A,B,20,2015-10-21 21:26:45\n",
        );
        let mut rows = CsvFiles::find(d.path()).unwrap().rows().unwrap();
        assert!(rows.next_row().unwrap().is_some());
        let e = rows.next_row().unwrap_err().to_string();
        assert!(
            e.ends_with("user_data.csv: line 3: ind 2 where geolocation_data.csv has ind 1 on the same row"),
            "{e}"
        );

        write(d.path(), "user_data.csv", ",ind,first_name,last_name,age,date_joined\n0,0,A,B,20,2015-10-21 21:26:45\n");
        let mut rows = CsvFiles::find(d.path()).unwrap().rows().unwrap();
        rows.next_row().unwrap();
        let e = rows.next_row().unwrap_err().to_string();
        assert!(e.contains("geolocation_data.csv: line 3: has more rows than user_data.csv"), "{e}");
    }

    #[test]
    fn directory_needs_geo_and_user() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "geolocation_data.csv", ",ind,timestamp,latitude,longitude,country\n");
        let e = CsvFiles::find(d.path()).unwrap_err().to_string();
        assert!(e.contains("user_data.csv is missing"), "{e}");
        write(d.path(), "user_data.csv", ",ind,first_name,last_name,age,date_joined\n");
        let f = CsvFiles::find(d.path()).unwrap();
        assert!(f.pin.is_none());
    }
}
