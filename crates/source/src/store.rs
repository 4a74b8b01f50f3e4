//! The source port: one trait every backend implements and one conformance suite
//! (`conformance.rs`) every backend passes.
//!
//! Row r of the three tables describes one post; r is the key column (`index` in
//! `pinterest_data`, `ind` in the other two), which is each table's primary key, so reading row r
//! is an index lookup, never a scan.

use async_trait::async_trait;
use pinpipe_model::{Post, RawGeo, RawPin, RawUser};

use crate::Result;

/// A batch of rows to insert; any of the three may be empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    /// Rows of `pinterest_data`.
    pub pins: Vec<RawPin>,
    /// Rows of `geolocation_data`.
    pub geos: Vec<RawGeo>,
    /// Rows of `user_data`.
    pub users: Vec<RawUser>,
}

impl Rows {
    /// Splits posts into the three tables' rows.
    pub fn from_posts(posts: Vec<Post>) -> Self {
        let mut rows = Rows {
            pins: Vec::with_capacity(posts.len()),
            geos: Vec::with_capacity(posts.len()),
            users: Vec::with_capacity(posts.len()),
        };
        for p in posts {
            rows.pins.push(p.pin);
            rows.geos.push(p.geo);
            rows.users.push(p.user);
        }
        rows
    }

    /// Number of posts (pin rows) in the batch.
    pub fn len(&self) -> usize {
        self.pins.len().max(self.geos.len()).max(self.users.len())
    }

    /// True if the batch holds no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Row counts of the three tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Rows in `pinterest_data`.
    pub pinterest_data: u64,
    /// Rows in `geolocation_data`.
    pub geolocation_data: u64,
    /// Rows in `user_data`.
    pub user_data: u64,
}

/// The source database port.
#[async_trait]
pub trait SourceStore: Send + Sync {
    /// The database URL, password removed, for messages.
    fn target(&self) -> String;

    /// Creates the three tables. With `replace`, existing tables are dropped first; without it,
    /// existing tables are kept as they are.
    async fn create_tables(&self, replace: bool) -> Result<()>;

    /// Whether all three tables exist.
    async fn tables_exist(&self) -> Result<bool>;

    /// Row counts, or `Error::NoTables` if the tables do not exist.
    async fn counts(&self) -> Result<Counts>;

    /// Inserts a batch in one transaction: all of it or none of it.
    async fn insert(&self, rows: Rows) -> Result<()>;

    /// Smallest and largest key of `pinterest_data`, `None` if it is empty.
    async fn key_range(&self) -> Result<Option<(i64, i64)>>;

    /// The smallest key ≥ `key` of `pinterest_data` (an index seek).
    async fn next_key(&self, key: i64) -> Result<Option<i64>>;

    /// Up to `limit` posts with keys ≥ `key`, in key order (keyset pagination: every page is an
    /// index range read, never an `OFFSET` scan).
    async fn posts_from(&self, key: i64, limit: usize) -> Result<Vec<Post>>;

    /// Row `key` of the three tables; `None` if `pinterest_data` has no such row, and
    /// `Error::Inconsistent` if another table lacks it.
    async fn post(&self, key: i64) -> Result<Option<Post>>;
}

/// `Error::NoTables` unless all three tables exist.
pub async fn ensure_tables(store: &dyn SourceStore) -> Result<()> {
    if store.tables_exist().await? { Ok(()) } else { Err(crate::Error::NoTables { target: store.target() }) }
}

/// Builds row `key` from what each table returned: `None` without a pin, an error if the pin
/// exists but another table lacks the row.
pub(crate) fn assemble(
    key: i64,
    pin: Option<RawPin>,
    geo: Option<RawGeo>,
    user: Option<RawUser>,
) -> Result<Option<Post>> {
    let Some(pin) = pin else { return Ok(None) };
    let geo = geo.ok_or(crate::Error::Inconsistent { key, missing_in: "geolocation_data" })?;
    let user = user.ok_or(crate::Error::Inconsistent { key, missing_in: "user_data" })?;
    Ok(Some(Post { pin, geo, user }))
}

/// Joins the rows of one page (each sorted by key) into posts; pins drive the page.
pub(crate) fn assemble_page(pins: Vec<RawPin>, geos: Vec<RawGeo>, users: Vec<RawUser>) -> Result<Vec<Post>> {
    let mut geos = geos.into_iter().peekable();
    let mut users = users.into_iter().peekable();
    let mut out = Vec::with_capacity(pins.len());
    for pin in pins {
        let key = pin.index;
        while geos.next_if(|g| g.ind < key).is_some() {}
        while users.next_if(|u| u.ind < key).is_some() {}
        let geo = geos.next_if(|g| g.ind == key);
        let user = users.next_if(|u| u.ind == key);
        out.extend(assemble(key, Some(pin), geo, user)?);
    }
    Ok(out)
}
