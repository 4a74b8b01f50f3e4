//! SQL text shared by the backends: the three tables' columns and types in each dialect.

use pinpipe_model::Kind;

/// A column's logical type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    Key,
    Text,
    Int,
    Float,
    Time,
}

/// The columns of a source table, in the contract's order.
pub(crate) fn columns(kind: Kind) -> &'static [(&'static str, Col)] {
    use Col::*;
    match kind {
        Kind::Pin => &[
            ("index", Key),
            ("unique_id", Text),
            ("title", Text),
            ("description", Text),
            ("poster_name", Text),
            ("follower_count", Text),
            ("tag_list", Text),
            ("is_image_or_video", Text),
            ("image_src", Text),
            ("downloaded", Int),
            ("save_location", Text),
            ("category", Text),
        ],
        Kind::Geo => &[("ind", Key), ("timestamp", Time), ("latitude", Float), ("longitude", Float), ("country", Text)],
        Kind::User => &[("ind", Key), ("first_name", Text), ("last_name", Text), ("age", Int), ("date_joined", Time)],
    }
}

/// The SQL dialects pinpipe speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    /// Quotes an identifier (`index` and `timestamp` are reserved words).
    pub(crate) fn quote(self, ident: &str) -> String {
        match self {
            Dialect::MySql => format!("`{ident}`"),
            Dialect::Sqlite | Dialect::Postgres => format!("\"{ident}\""),
        }
    }

    fn type_name(self, col: Col) -> &'static str {
        match (self, col) {
            (Dialect::Sqlite, Col::Key) => "INTEGER PRIMARY KEY",
            (Dialect::Sqlite, Col::Int) => "INTEGER",
            (Dialect::Sqlite, Col::Float) => "REAL",
            (Dialect::Sqlite, Col::Text | Col::Time) => "TEXT",
            (Dialect::Postgres | Dialect::MySql, Col::Key) => "BIGINT PRIMARY KEY",
            (Dialect::Postgres | Dialect::MySql, Col::Int) => "BIGINT",
            (Dialect::Postgres, Col::Float) => "DOUBLE PRECISION",
            (Dialect::MySql, Col::Float) => "DOUBLE",
            (Dialect::Postgres | Dialect::MySql, Col::Text) => "TEXT",
            (Dialect::Postgres, Col::Time) => "TIMESTAMP",
            (Dialect::MySql, Col::Time) => "DATETIME(6)",
        }
    }

    /// Placeholder number `i` (1-based).
    pub(crate) fn placeholder(self, i: usize) -> String {
        match self {
            Dialect::Postgres => format!("${i}"),
            Dialect::Sqlite => format!("?{i}"),
            Dialect::MySql => "?".to_owned(),
        }
    }

    /// `CREATE TABLE IF NOT EXISTS ...`.
    pub(crate) fn create_table(self, kind: Kind) -> String {
        let cols: Vec<String> =
            columns(kind).iter().map(|(name, col)| format!("{} {}", self.quote(name), self.type_name(*col))).collect();
        let suffix = if self == Dialect::MySql { " DEFAULT CHARSET=utf8mb4" } else { "" };
        format!("CREATE TABLE IF NOT EXISTS {} ({}){suffix}", kind.source_table(), cols.join(", "))
    }

    /// `DROP TABLE IF EXISTS ...`.
    pub(crate) fn drop_table(self, kind: Kind) -> String {
        format!("DROP TABLE IF EXISTS {}", kind.source_table())
    }

    /// The quoted, comma-separated column list.
    pub(crate) fn column_list(self, kind: Kind) -> String {
        columns(kind).iter().map(|(name, _)| self.quote(name)).collect::<Vec<_>>().join(", ")
    }

    /// `SELECT <all columns> FROM t WHERE key = <placeholder 1>`.
    pub(crate) fn select_row(self, kind: Kind) -> String {
        format!(
            "SELECT {} FROM {} WHERE {} = {}",
            self.column_list(kind),
            kind.source_table(),
            self.quote(kind.key_column()),
            self.placeholder(1)
        )
    }

    /// Rows of a page: `key >= p1`, ordered; pins are limited to `p2` rows, the other tables
    /// bounded by `key <= p2` (the page's last pin key).
    pub(crate) fn select_page(self, kind: Kind) -> String {
        let k = self.quote(kind.key_column());
        let bound = match kind {
            Kind::Pin => format!("ORDER BY {k} LIMIT {}", self.placeholder(2)),
            Kind::Geo | Kind::User => format!("AND {k} <= {} ORDER BY {k}", self.placeholder(2)),
        };
        format!(
            "SELECT {} FROM {} WHERE {k} >= {} {bound}",
            self.column_list(kind),
            kind.source_table(),
            self.placeholder(1)
        )
    }

    /// `INSERT INTO t (cols) VALUES (<placeholders for one row>)`.
    pub(crate) fn insert_row(self, kind: Kind) -> String {
        let n = columns(kind).len();
        let ph: Vec<String> = (1..=n).map(|i| self.placeholder(i)).collect();
        format!("INSERT INTO {} ({}) VALUES ({})", kind.source_table(), self.column_list(kind), ph.join(", "))
    }

    /// Key range of `pinterest_data`: two subqueries, because SQLite answers a lone `MIN` or
    /// `MAX` from the index but scans the table for `SELECT MIN(k), MAX(k)`.
    pub(crate) fn key_range(self) -> String {
        let (k, t) = (self.quote(Kind::Pin.key_column()), Kind::Pin.source_table());
        format!("SELECT (SELECT MIN({k}) FROM {t}), (SELECT MAX({k}) FROM {t})")
    }

    /// Smallest key ≥ placeholder 1 (an index seek).
    pub(crate) fn next_key(self) -> String {
        let k = self.quote(Kind::Pin.key_column());
        format!(
            "SELECT {k} FROM {} WHERE {k} >= {} ORDER BY {k} LIMIT 1",
            Kind::Pin.source_table(),
            self.placeholder(1)
        )
    }

    /// `SELECT COUNT(*) FROM t`.
    pub(crate) fn count(self, kind: Kind) -> String {
        format!("SELECT COUNT(*) FROM {}", kind.source_table())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_quotes_reserved_words_per_dialect() {
        assert_eq!(
            Dialect::Postgres.create_table(Kind::Geo),
            "CREATE TABLE IF NOT EXISTS geolocation_data (\"ind\" BIGINT PRIMARY KEY, \"timestamp\" TIMESTAMP, \"latitude\" DOUBLE PRECISION, \"longitude\" DOUBLE PRECISION, \"country\" TEXT)"
        );
        assert!(
            Dialect::MySql
                .create_table(Kind::Pin)
                .starts_with("CREATE TABLE IF NOT EXISTS pinterest_data (`index` BIGINT PRIMARY KEY")
        );
        assert_eq!(
            Dialect::Sqlite.select_row(Kind::User),
            "SELECT \"ind\", \"first_name\", \"last_name\", \"age\", \"date_joined\" FROM user_data WHERE \"ind\" = ?1"
        );
    }
}
