//! The PostgreSQL backend (sqlx). Bulk inserts use `COPY ... FROM STDIN`, the fastest way into
//! PostgreSQL; everything else is a prepared statement on a small pool.

use async_trait::async_trait;
use pinpipe_model::{Kind, Post, time};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPool;

use crate::sql::Dialect;
use crate::store::{Counts, Rows, SourceStore, assemble, assemble_page};
use crate::{Error, Result, server};

const D: Dialect = Dialect::Postgres;

/// A source database on a PostgreSQL server.
pub struct PostgresStore {
    pool: PgPool,
    target: String,
}

impl PostgresStore {
    /// Connects (fails within a few seconds if the server is unreachable).
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = server::connect::<sqlx::Postgres>(url).await?;
        let target = crate::config::redact(url);
        Ok(PostgresStore { pool, target })
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
        self.target.clone()
    }

    async fn create_tables(&self, replace: bool) -> Result<()> {
        let doing = "creating the source tables";
        let mut tx = self.pool.begin().await.map_err(|e| Error::db(doing, e))?;
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
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() \
             AND table_name IN ('pinterest_data', 'geolocation_data', 'user_data')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| Error::db("checking for the source tables", e))?;
        Ok(n == 3)
    }

    async fn counts(&self) -> Result<Counts> {
        if !self.tables_exist().await? {
            return Err(Error::NoTables { target: self.target.clone() });
        }
        let mut n = [0u64; 3];
        for (slot, kind) in n.iter_mut().zip(Kind::ALL) {
            let c: i64 = sqlx::query_scalar(AssertSqlSafe(D.count(kind)))
                .fetch_one(&self.pool)
                .await
                .map_err(|e| Error::db("counting rows", e))?;
            *slot = c.max(0) as u64;
        }
        Ok(Counts { pinterest_data: n[0], geolocation_data: n[1], user_data: n[2] })
    }

    async fn insert(&self, rows: Rows) -> Result<()> {
        let doing = "copying rows into PostgreSQL";
        let mut tx = self.pool.begin().await.map_err(|e| Error::db(doing, e))?;
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
        let (lo, hi): (Option<i64>, Option<i64>) = sqlx::query_as(AssertSqlSafe(D.key_range()))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| Error::db("reading the key range", e))?;
        Ok(lo.zip(hi))
    }

    async fn next_key(&self, key: i64) -> Result<Option<i64>> {
        sqlx::query_scalar(AssertSqlSafe(D.next_key()))
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| Error::db("seeking a row", e))
    }

    async fn posts_from(&self, key: i64, limit: usize) -> Result<Vec<Post>> {
        let doing = |e| Error::db("reading a page of rows", e);
        let pins = sqlx::query(AssertSqlSafe(D.select_page(Kind::Pin)))
            .bind(key)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(doing)?;
        let pins = pins.iter().map(server::pin).collect::<Result<Vec<_>>>()?;
        let Some(last) = pins.last().map(|p| p.index) else { return Ok(Vec::new()) };
        let page = |kind: Kind| {
            let pool = self.pool.clone();
            async move {
                sqlx::query(AssertSqlSafe(D.select_page(kind)))
                    .bind(key)
                    .bind(last)
                    .fetch_all(&pool)
                    .await
                    .map_err(doing)
            }
        };
        let (geos, users) = tokio::try_join!(page(Kind::Geo), page(Kind::User))?;
        assemble_page(
            pins,
            geos.iter().map(server::geo).collect::<Result<_>>()?,
            users.iter().map(server::user).collect::<Result<_>>()?,
        )
    }

    async fn post(&self, key: i64) -> Result<Option<Post>> {
        let fetch = |kind: Kind| {
            let sql = D.select_row(kind);
            let pool = self.pool.clone();
            async move {
                sqlx::query(AssertSqlSafe(sql))
                    .bind(key)
                    .fetch_optional(&pool)
                    .await
                    .map_err(|e| Error::db("reading a row", e))
            }
        };
        let (p, g, u) = tokio::try_join!(fetch(Kind::Pin), fetch(Kind::Geo), fetch(Kind::User))?;
        assemble(
            key,
            p.as_ref().map(server::pin).transpose()?,
            g.as_ref().map(server::geo).transpose()?,
            u.as_ref().map(server::user).transpose()?,
        )
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
