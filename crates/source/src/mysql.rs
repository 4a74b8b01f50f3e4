//! The MySQL / MariaDB backend (sqlx). Bulk inserts are multi-row `INSERT ... VALUES` statements
//! sized under the server's placeholder limit, inside one transaction per batch.

use async_trait::async_trait;
use pinpipe_model::{Kind, Post};
use sqlx::AssertSqlSafe;
use sqlx::mysql::MySqlPool;
use sqlx::{MySql, QueryBuilder};

use crate::sql::Dialect;
use crate::store::{Counts, Rows, SourceStore, assemble, assemble_page};
use crate::{Error, Result, server};

const D: Dialect = Dialect::MySql;
/// Rows per INSERT statement: 12 columns × 2,000 rows stays well under MySQL's 65,535 placeholders.
const ROWS_PER_STATEMENT: usize = 2_000;

/// A source database on a MySQL or MariaDB server.
pub struct MySqlStore {
    pool: MySqlPool,
    target: String,
}

impl MySqlStore {
    /// Connects (fails within a few seconds if the server is unreachable).
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = server::connect::<sqlx::MySql>(url).await?;
        let target = crate::config::redact(url);
        Ok(MySqlStore { pool, target })
    }
}

fn insert_into(kind: Kind) -> QueryBuilder<MySql> {
    QueryBuilder::new(format!("INSERT INTO {} ({}) ", kind.source_table(), D.column_list(kind)))
}

#[async_trait]
impl SourceStore for MySqlStore {
    fn target(&self) -> String {
        self.target.clone()
    }

    async fn create_tables(&self, replace: bool) -> Result<()> {
        // DDL commits implicitly in MySQL, so no transaction here.
        let doing = "creating the source tables";
        for kind in Kind::ALL {
            if replace {
                sqlx::query(AssertSqlSafe(D.drop_table(kind)))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| Error::db(doing, e))?;
            }
            sqlx::query(AssertSqlSafe(D.create_table(kind)))
                .execute(&self.pool)
                .await
                .map_err(|e| Error::db(doing, e))?;
        }
        Ok(())
    }

    async fn tables_exist(&self) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() \
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
        let doing = "inserting rows into MySQL";
        let db = |e| Error::db(doing, e);
        let mut tx = self.pool.begin().await.map_err(db)?;
        for chunk in rows.pins.chunks(ROWS_PER_STATEMENT) {
            let mut q = insert_into(Kind::Pin);
            q.push_values(chunk, |mut b, p| {
                b.push_bind(p.index)
                    .push_bind(p.unique_id.as_deref())
                    .push_bind(p.title.as_deref())
                    .push_bind(p.description.as_deref())
                    .push_bind(p.poster_name.as_deref())
                    .push_bind(p.follower_count.as_deref())
                    .push_bind(p.tag_list.as_deref())
                    .push_bind(p.is_image_or_video.as_deref())
                    .push_bind(p.image_src.as_deref())
                    .push_bind(p.downloaded)
                    .push_bind(p.save_location.as_deref())
                    .push_bind(p.category.as_deref());
            });
            q.build().execute(&mut *tx).await.map_err(db)?;
        }
        for chunk in rows.geos.chunks(ROWS_PER_STATEMENT) {
            let mut q = insert_into(Kind::Geo);
            q.push_values(chunk, |mut b, g| {
                b.push_bind(g.ind)
                    .push_bind(g.timestamp)
                    .push_bind(g.latitude)
                    .push_bind(g.longitude)
                    .push_bind(g.country.as_deref());
            });
            q.build().execute(&mut *tx).await.map_err(db)?;
        }
        for chunk in rows.users.chunks(ROWS_PER_STATEMENT) {
            let mut q = insert_into(Kind::User);
            q.push_values(chunk, |mut b, u| {
                b.push_bind(u.ind)
                    .push_bind(u.first_name.as_deref())
                    .push_bind(u.last_name.as_deref())
                    .push_bind(u.age)
                    .push_bind(u.date_joined);
            });
            q.build().execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
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
