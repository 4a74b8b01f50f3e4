//! The PostgreSQL backend (sqlx). Bulk inserts use `COPY ... FROM STDIN`, the fastest way into
//! PostgreSQL; everything else is a prepared statement on a small pool.

use async_trait::async_trait;
use pinpipe_model::{Kind, Post, time};
use sqlx::AssertSqlSafe;

use crate::server::Server;
use crate::sql::Dialect;
use crate::store::{Counts, Rows, SourceStore};
use crate::{Error, Result};

const D: Dialect = Dialect::Postgres;

/// A source database on a PostgreSQL server.
pub struct PostgresStore {
    server: Server<sqlx::Postgres>,
}

impl PostgresStore {
    /// Connects (fails within a few seconds if the server is unreachable).
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(PostgresStore { server: Server::connect(url, D).await? })
    }
}

/// Escapes a value for `COPY ... (FORMAT text)`; `None` is `\N`.
fn copy_field(out: &mut String, value: Option<&str>) {
    let Some(v) = value else {
        out.push_str("\\N");
        return;
    };
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn copy_line(out: &mut String, fields: &[Option<&str>]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        copy_field(out, *f);
    }
    out.push('\n');
}

fn copy_pins(rows: &Rows) -> String {
    let mut out = String::with_capacity(rows.pins.len() * 400);
    for p in &rows.pins {
        let index = p.index.to_string();
        let downloaded = p.downloaded.map(|d| d.to_string());
        copy_line(
            &mut out,
            &[
                Some(&index),
                p.unique_id.as_deref(),
                p.title.as_deref(),
                p.description.as_deref(),
                p.poster_name.as_deref(),
                p.follower_count.as_deref(),
                p.tag_list.as_deref(),
                p.is_image_or_video.as_deref(),
                p.image_src.as_deref(),
                downloaded.as_deref(),
                p.save_location.as_deref(),
                p.category.as_deref(),
            ],
        );
    }
    out
}

/// A float in a form PostgreSQL reads back to the same bits (Rust prints the shortest
/// round-tripping decimal).
fn float_text(f: Option<f64>) -> Option<String> {
    f.map(|v| {
        if v.is_finite() {
            v.to_string()
        } else if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    })
}

fn copy_geos(rows: &Rows) -> String {
    let mut out = String::with_capacity(rows.geos.len() * 80);
    for g in &rows.geos {
        let (ind, ts, lat, lon) = (
            g.ind.to_string(),
            g.timestamp.as_ref().map(time::to_sql),
            float_text(g.latitude),
            float_text(g.longitude),
        );
        copy_line(&mut out, &[Some(&ind), ts.as_deref(), lat.as_deref(), lon.as_deref(), g.country.as_deref()]);
    }
    out
}

fn copy_users(rows: &Rows) -> String {
    let mut out = String::with_capacity(rows.users.len() * 80);
    for u in &rows.users {
        let (ind, age, joined) =
            (u.ind.to_string(), u.age.map(|a| a.to_string()), u.date_joined.as_ref().map(time::to_sql));
        copy_line(
            &mut out,
            &[Some(&ind), u.first_name.as_deref(), u.last_name.as_deref(), age.as_deref(), joined.as_deref()],
        );
    }
    out
}

#[async_trait]
impl SourceStore for PostgresStore {
    fn target(&self) -> String {
        self.server.target.clone()
    }

    async fn create_tables(&self, replace: bool) -> Result<()> {
        let doing = "creating the source tables";
        let mut tx = self.server.pool.begin().await.map_err(|e| Error::db(doing, e))?;
        for kind in Kind::ALL {
            if replace {
                sqlx::query(AssertSqlSafe(D.drop_table(kind)))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| Error::db(doing, e))?;
            }
            sqlx::query(AssertSqlSafe(D.create_table(kind)))
                .execute(&mut *tx)
                .await
                .map_err(|e| Error::db(doing, e))?;
        }
        tx.commit().await.map_err(|e| Error::db(doing, e))
    }

    async fn tables_exist(&self) -> Result<bool> {
        self.server.tables_exist().await
    }

    async fn counts(&self) -> Result<Counts> {
        self.server.counts().await
    }

    async fn insert(&self, rows: Rows) -> Result<()> {
        let doing = "copying rows into PostgreSQL";
        let mut tx = self.server.pool.begin().await.map_err(|e| Error::db(doing, e))?;
        for (kind, data) in
            [(Kind::Pin, copy_pins(&rows)), (Kind::Geo, copy_geos(&rows)), (Kind::User, copy_users(&rows))]
        {
            if data.is_empty() {
                continue;
            }
            let statement = format!("COPY {} ({}) FROM STDIN (FORMAT text)", kind.source_table(), D.column_list(kind));
            let mut copy = tx.copy_in_raw(&statement).await.map_err(|e| Error::db(doing, e))?;
            copy.send(data.into_bytes()).await.map_err(|e| Error::db(doing, e))?;
            copy.finish().await.map_err(|e| Error::db(doing, e))?;
        }
        tx.commit().await.map_err(|e| Error::db(doing, e))
    }

    async fn key_range(&self) -> Result<Option<(i64, i64)>> {
        self.server.key_range().await
    }

    async fn next_key(&self, key: i64) -> Result<Option<i64>> {
        self.server.next_key(key).await
    }

    async fn posts_from(&self, key: i64, limit: usize) -> Result<Vec<Post>> {
        self.server.posts_from(key, limit).await
    }

    async fn post(&self, key: i64) -> Result<Option<Post>> {
        self.server.post(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_control_characters_and_nulls() {
        let mut out = String::new();
        copy_line(&mut out, &[Some("a\tb\\c\nd\re"), None, Some("")]);
        assert_eq!(out, "a\\tb\\\\c\\nd\\re\t\\N\t\n");
    }
}
