//! The MySQL / MariaDB backend (sqlx). Bulk inserts are multi-row `INSERT ... VALUES` statements
//! sized under the server's placeholder limit, inside one transaction per batch.

use async_trait::async_trait;
use pinpipe_model::{Kind, Post};
use sqlx::AssertSqlSafe;
use sqlx::{MySql, QueryBuilder};

use crate::server::Server;
use crate::sql::Dialect;
use crate::store::{Counts, Rows, SourceStore};
use crate::{Error, Result};

const D: Dialect = Dialect::MySql;
/// Rows per INSERT statement: 12 columns × 2,000 rows stays well under MySQL's 65,535 placeholders.
const ROWS_PER_STATEMENT: usize = 2_000;

/// A source database on a MySQL or MariaDB server.
pub struct MySqlStore {
    server: Server<sqlx::MySql>,
}

impl MySqlStore {
    /// Connects (fails within a few seconds if the server is unreachable).
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(MySqlStore { server: Server::connect(url, D).await? })
    }
}

fn insert_into(kind: Kind) -> QueryBuilder<MySql> {
    QueryBuilder::new(format!("INSERT INTO {} ({}) ", kind.source_table(), D.column_list(kind)))
}

#[async_trait]
impl SourceStore for MySqlStore {
    fn target(&self) -> String {
        self.server.target.clone()
    }

    async fn create_tables(&self, replace: bool) -> Result<()> {
        // DDL commits implicitly in MySQL, so no transaction here.
        let doing = "creating the source tables";
        for kind in Kind::ALL {
            if replace {
                sqlx::query(AssertSqlSafe(D.drop_table(kind)))
                    .execute(&self.server.pool)
                    .await
                    .map_err(|e| Error::db(doing, e))?;
            }
            sqlx::query(AssertSqlSafe(D.create_table(kind)))
                .execute(&self.server.pool)
                .await
                .map_err(|e| Error::db(doing, e))?;
        }
        Ok(())
    }

    async fn tables_exist(&self) -> Result<bool> {
        self.server.tables_exist().await
    }

    async fn counts(&self) -> Result<Counts> {
        self.server.counts().await
    }

    async fn insert(&self, rows: Rows) -> Result<()> {
        let doing = "inserting rows into MySQL";
        let db = |e| Error::db(doing, e);
        let mut tx = self.server.pool.begin().await.map_err(db)?;
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
