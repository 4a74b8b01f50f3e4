//! What the two server backends (PostgreSQL and MySQL, both through sqlx) share: decoding a row
//! of each table into the raw records, and pool settings.

use std::time::Duration;

use chrono::NaiveDateTime;
use pinpipe_model::{RawGeo, RawPin, RawUser};

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
