//! What the two server backends (PostgreSQL and MySQL, both through sqlx) share: connecting,
//! decoding rows into the raw records, and every read, written once over any sqlx database.
//! The backends differ only in DDL transactions and bulk loading.

use std::time::Duration;

use chrono::NaiveDateTime;
use pinpipe_model::{Kind, Post, RawGeo, RawPin, RawUser};
use sqlx::{AssertSqlSafe, Database, Pool};

use crate::sql::Dialect;
use crate::store::{Counts, assemble, assemble_page};
use crate::{Error, Result};

/// How long connecting or acquiring a pooled connection may take before failing.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pooled connections per store.
pub(crate) const POOL_SIZE: u32 = 8;

/// Connects to a server: one direct connection first, so that a refused connection or bad
/// credentials fail at once instead of after the pool's retry window, then a lazy pool.
pub(crate) async fn connect<DB: sqlx::Database>(url: &str) -> Result<sqlx::Pool<DB>> {
    use sqlx::{ConnectOptions, Connection};
    let target = crate::config::redact(url);
    let fail = |e: sqlx::Error| Error::Connect { target: target.clone(), source: Box::new(e) };
    let options: <DB::Connection as Connection>::Options = url.parse().map_err(fail)?;
    let probe = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
        .await
        .map_err(|_| fail(sqlx::Error::PoolTimedOut))?
        .map_err(fail)?;
    probe.close().await.map_err(fail)?;
    Ok(sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_lazy_with(options))
}

/// Typed access to column `i` of a result row.
pub(crate) trait RowExt {
    fn text(&self, i: usize) -> sqlx::Result<Option<String>>;
    fn int(&self, i: usize) -> sqlx::Result<Option<i64>>;
    fn key(&self, i: usize) -> sqlx::Result<i64>;
    fn float(&self, i: usize) -> sqlx::Result<Option<f64>>;
    fn time(&self, i: usize) -> sqlx::Result<Option<NaiveDateTime>>;
}

macro_rules! impl_row_ext {
    ($row:ty) => {
        impl RowExt for $row {
            fn text(&self, i: usize) -> sqlx::Result<Option<String>> {
                sqlx::Row::try_get(self, i)
            }
            fn int(&self, i: usize) -> sqlx::Result<Option<i64>> {
                sqlx::Row::try_get(self, i)
            }
            fn key(&self, i: usize) -> sqlx::Result<i64> {
                sqlx::Row::try_get(self, i)
            }
            fn float(&self, i: usize) -> sqlx::Result<Option<f64>> {
                sqlx::Row::try_get(self, i)
            }
            fn time(&self, i: usize) -> sqlx::Result<Option<NaiveDateTime>> {
                sqlx::Row::try_get(self, i)
            }
        }
    };
}
impl_row_ext!(sqlx::postgres::PgRow);
impl_row_ext!(sqlx::mysql::MySqlRow);

fn decoding(e: sqlx::Error) -> Error {
    Error::db("decoding a row", e)
}

pub(crate) fn pin(r: &impl RowExt) -> Result<RawPin> {
    (|| {
        Ok(RawPin {
            index: r.key(0)?,
            unique_id: r.text(1)?,
            title: r.text(2)?,
            description: r.text(3)?,
            poster_name: r.text(4)?,
            follower_count: r.text(5)?,
            tag_list: r.text(6)?,
            is_image_or_video: r.text(7)?,
            image_src: r.text(8)?,
            downloaded: r.int(9)?,
            save_location: r.text(10)?,
            category: r.text(11)?,
        })
    })()
    .map_err(decoding)
}

pub(crate) fn geo(r: &impl RowExt) -> Result<RawGeo> {
    (|| {
        Ok(RawGeo {
            ind: r.key(0)?,
            timestamp: r.time(1)?,
            latitude: r.float(2)?,
            longitude: r.float(3)?,
            country: r.text(4)?,
        })
    })()
    .map_err(decoding)
}

pub(crate) fn user(r: &impl RowExt) -> Result<RawUser> {
    (|| {
        Ok(RawUser {
            ind: r.key(0)?,
            first_name: r.text(1)?,
            last_name: r.text(2)?,
            age: r.int(3)?,
            date_joined: r.time(4)?,
        })
    })()
    .map_err(decoding)
}

/// A pool on a server with the reads every server backend shares.
pub(crate) struct Server<DB: Database> {
    pub(crate) pool: Pool<DB>,
    pub(crate) target: String,
    dialect: Dialect,
}

impl<DB> Server<DB>
where
    DB: Database,
    DB::Row: RowExt,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    /// Connects (see [`connect`]).
    pub(crate) async fn connect(url: &str, dialect: Dialect) -> Result<Self> {
        Ok(Server { pool: connect::<DB>(url).await?, target: crate::config::redact(url), dialect })
    }

    /// Runs `sql` with integer parameters and returns every row.
    async fn rows(&self, sql: String, params: &[i64], doing: &str) -> Result<Vec<DB::Row>> {
        let mut q = sqlx::query::<DB>(AssertSqlSafe(sql));
        for p in params {
            q = q.bind(*p);
        }
        q.fetch_all(&self.pool).await.map_err(|e| Error::db(doing, e))
    }

    async fn first_int(&self, sql: String, params: &[i64], doing: &str) -> Result<Option<i64>> {
        let rows = self.rows(sql, params, doing).await?;
        rows.first().map(|r| r.int(0)).transpose().map(Option::flatten).map_err(|e| Error::db(doing, e))
    }

    pub(crate) async fn tables_exist(&self) -> Result<bool> {
        let schema = if self.dialect == Dialect::MySql { "DATABASE()" } else { "current_schema()" };
        let sql = format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = {schema} \
             AND table_name IN ('pinterest_data', 'geolocation_data', 'user_data')"
        );
        Ok(self.first_int(sql, &[], "checking for the source tables").await? == Some(3))
    }

    pub(crate) async fn counts(&self) -> Result<Counts> {
        if !self.tables_exist().await? {
            return Err(Error::NoTables { target: self.target.clone() });
        }
        let mut n = [0u64; 3];
        for (slot, kind) in n.iter_mut().zip(Kind::ALL) {
            let c = self.first_int(self.dialect.count(kind), &[], "counting rows").await?;
            *slot = c.unwrap_or(0).max(0) as u64;
        }
        Ok(Counts { pinterest_data: n[0], geolocation_data: n[1], user_data: n[2] })
    }

    pub(crate) async fn key_range(&self) -> Result<Option<(i64, i64)>> {
        let doing = "reading the key range";
        let rows = self.rows(self.dialect.key_range(), &[], doing).await?;
        let Some(r) = rows.first() else { return Ok(None) };
        let (lo, hi) = (r.int(0), r.int(1));
        Ok(lo.map_err(|e| Error::db(doing, e))?.zip(hi.map_err(|e| Error::db(doing, e))?))
    }

    pub(crate) async fn next_key(&self, key: i64) -> Result<Option<i64>> {
        self.first_int(self.dialect.next_key(), &[key], "seeking a row").await
    }

    pub(crate) async fn posts_from(&self, key: i64, limit: usize) -> Result<Vec<Post>> {
        let doing = "reading a page of rows";
        let d = self.dialect;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let pins = self.rows(d.select_page(Kind::Pin), &[key, limit], doing).await?;
        let pins = pins.iter().map(pin).collect::<Result<Vec<_>>>()?;
        let Some(last) = pins.last().map(|p| p.index) else { return Ok(Vec::new()) };
        let bounds = [key, last];
        let (geos, users) = tokio::try_join!(
            self.rows(d.select_page(Kind::Geo), &bounds, doing),
            self.rows(d.select_page(Kind::User), &bounds, doing)
        )?;
        assemble_page(
            pins,
            geos.iter().map(geo).collect::<Result<_>>()?,
            users.iter().map(user).collect::<Result<_>>()?,
        )
    }

    pub(crate) async fn post(&self, key: i64) -> Result<Option<Post>> {
        let doing = "reading a row";
        let d = self.dialect;
        let k = [key];
        let (p, g, u) = tokio::try_join!(
            self.rows(d.select_row(Kind::Pin), &k, doing),
            self.rows(d.select_row(Kind::Geo), &k, doing),
            self.rows(d.select_row(Kind::User), &k, doing)
        )?;
        assemble(
            key,
            p.first().map(pin).transpose()?,
            g.first().map(geo).transpose()?,
            u.first().map(user).transpose()?,
        )
    }
}
