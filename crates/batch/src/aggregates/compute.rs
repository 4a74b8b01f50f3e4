//! The aggregates of the joins, added to the saved ones: the count tables, q3's top posters,
//! the follower-count histograms for the medians, and q6's users by fingerprint.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use futures_util::StreamExt;
use pinpipe_model::{Kind, schema};
use pinpipe_transform::Fingerprinter;

use super::Aggregates;
use crate::queries::{COUNTS, NEW_USERS, TOP_POSTER_CANDIDATES, TOP_POSTERS_TABLE, USERS_TABLE};
use crate::{Error, Result};

/// The aggregates of `ctx`'s `pg_delta` and `pgu_delta` (registered by
/// [`queries::register_joins`]) added to `base` (none: they are the whole tables' joins).
/// `covers`: the files the result covers.
pub async fn compute(
    ctx: &SessionContext,
    base: Option<&Aggregates>,
    covers: BTreeMap<String, Vec<String>>,
) -> Result<Aggregates> {
    let mut out = Aggregates { covers, ..Default::default() };
    for count in COUNTS {
        let err = |source| Error::Query { question: count.name.into(), source };
        let sql = match base.and_then(|b| b.tables.get(count.name)) {
            None => count.sql.to_owned(),
            Some((schema, batches)) => {
                let old = format!("{}_saved", count.name);
                let table = MemTable::try_new(Arc::clone(schema), vec![batches.clone()]).map_err(err)?;
                ctx.register_table(old.as_str(), Arc::new(table)).map_err(err)?;
                let keys = count.keys.join(", ");
                format!(
                    "SELECT {keys}, CAST(SUM(n) AS BIGINT) AS n FROM (SELECT {keys}, n FROM {old} UNION ALL {}) t GROUP BY {keys}",
                    count.sql
                )
            }
        };
        out.tables.insert(count.name.to_owned(), collect(ctx, count.name, &sql).await?);
    }

    // q3: the top of (the top so far, the new rows).
    let err = |source| Error::Query { question: TOP_POSTERS_TABLE.into(), source };
    let mut input = "SELECT country, poster_name, follower_count FROM pg_delta".to_owned();
    if let Some((schema, batches)) = base.and_then(|b| b.tables.get(TOP_POSTERS_TABLE)) {
        let table = MemTable::try_new(Arc::clone(schema), vec![batches.clone()]).map_err(err)?;
        ctx.register_table("top_posters_saved", Arc::new(table)).map_err(err)?;
        input.push_str(" UNION ALL SELECT country, poster_name, follower_count FROM top_posters_saved");
    }
    ctx.register_table("top_posters_in", ctx.sql(&input).await.map_err(err)?.into_view()).map_err(err)?;
    out.tables.insert(TOP_POSTERS_TABLE.to_owned(), top_posters(ctx).await?);

    // q6: users not counted before, by fingerprint.
    let (users, joined) = count_users(ctx, base).await?;
    out.users = users;
    out.tables.insert(USERS_TABLE.to_owned(), joined);
    Ok(out)
}

/// q3's aggregate from [`TOP_POSTER_CANDIDATES`]: per country, every distinct poster with the
/// country's highest follower count (`country`, `poster_name`, `follower_count`, sorted).
async fn top_posters(ctx: &SessionContext) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    use datafusion::arrow::array::StringArray;
    let err = |source| Error::Query { question: TOP_POSTERS_TABLE.into(), source };
    let mut top: BTreeMap<String, (i64, std::collections::BTreeSet<String>)> = BTreeMap::new();
    let mut stream = ctx.sql(TOP_POSTER_CANDIDATES).await.map_err(err)?.execute_stream().await.map_err(err)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(err)?;
        let text = |i: usize| datafusion::arrow::compute::cast(batch.column(i), &DataType::Utf8);
        let (countries, posters) = (text(0)?, text(1)?);
        let (countries, posters) = (countries.as_string::<i32>(), posters.as_string::<i32>());
        let counts = datafusion::arrow::compute::cast(batch.column(2), &DataType::Int64)?;
        let counts = counts.as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            let (country, poster, count) = (countries.value(i), posters.value(i), counts.value(i));
            match top.get_mut(country) {
                Some((best, _)) if count < *best => {}
                Some((best, names)) if count == *best => {
                    if !names.contains(poster) {
                        names.insert(poster.to_owned());
                    }
                }
                Some(entry) => *entry = (count, std::collections::BTreeSet::from([poster.to_owned()])),
                None => {
                    top.insert(country.to_owned(), (count, std::collections::BTreeSet::from([poster.to_owned()])));
                }
            }
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("country", DataType::Utf8, true),
        Field::new("poster_name", DataType::Utf8, true),
        Field::new("follower_count", DataType::Int64, true),
    ]));
    let rows: Vec<(&String, &String, i64)> =
        top.iter().flat_map(|(c, (n, names))| names.iter().map(move |p| (c, p, *n))).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(rows.iter().map(|r| Some(r.0.as_str())).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| Some(r.1.as_str())).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| Some(r.2)).collect::<Int64Array>()),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok((schema, vec![batch].into_iter().filter(|b| b.num_rows() > 0).collect()))
}

/// Runs `sql`: its rows with plain strings and nullable columns (however the plan typed them),
/// so that an aggregate table has one schema from run to run, also without rows.
async fn collect(ctx: &SessionContext, name: &str, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let err = |source| Error::Query { question: name.into(), source };
    let df = ctx.sql(sql).await.map_err(err)?;
    let fields: Vec<Field> = df
        .schema()
        .as_arrow()
        .fields()
        .iter()
        .map(|f| {
            let data_type = match f.data_type() {
                DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
                other => other.clone(),
            };
            Field::new(f.name(), data_type, true)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batches = df.collect().await.map_err(err)?;
    let batches = batches
        .into_iter()
        .filter(|b| b.num_rows() > 0)
        .map(|b| {
            let columns = b
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RecordBatch::try_new(Arc::clone(&schema), columns)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((schema, batches))
}

/// q6's users: the fingerprints of every user counted (sorted), and the table of users per join
/// year (`join_year`, `n`).
async fn count_users(
    ctx: &SessionContext,
    base: Option<&Aggregates>,
) -> Result<(Vec<u128>, (SchemaRef, Vec<RecordBatch>))> {
    let err = |source| Error::Query { question: USERS_TABLE.into(), source };
    let user = schema::clean(Kind::User);
    let triple = Arc::new(Schema::new(
        ["user_name", "age", "date_joined"]
            .iter()
            .filter_map(|n| user.field_with_name(n).ok().cloned())
            .collect::<Vec<Field>>(),
    ));
    let fingerprinter = Fingerprinter::for_schema(triple)?;
    // Per join year, the fingerprints of its users among the new rows (a user's join year is
    // part of the user): 16 bytes a row, less than a hash table of the users' strings.
    let mut seen: BTreeMap<i64, Vec<u128>> = BTreeMap::new();
    let mut stream = ctx.sql(NEW_USERS).await.map_err(err)?.execute_stream().await.map_err(err)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(err)?;
        let fps = fingerprinter.fingerprints(&batch)?;
        let years = batch.column(3).as_primitive::<Int64Type>();
        for (fp, year) in fps.into_iter().zip(years.values()) {
            seen.entry(*year).or_default().push(fp);
        }
    }
    let empty = Vec::new();
    let before = base.map_or(&empty, |b| &b.users);
    let mut per_year: BTreeMap<i64, i64> = BTreeMap::new();
    if let Some((_, batches)) = base.and_then(|b| b.tables.get(USERS_TABLE)) {
        for b in batches {
            let (years, n) = (b.column(0).as_primitive::<Int64Type>(), b.column(1).as_primitive::<Int64Type>());
            for (y, n) in years.values().iter().zip(n.values()) {
                *per_year.entry(*y).or_default() += n;
            }
        }
    }
    let mut added = Vec::new();
    for (year, mut fps) in seen {
        fps.sort_unstable();
        fps.dedup();
        let new = fps.into_iter().filter(|fp| before.binary_search(fp).is_err());
        let before_len = added.len();
        added.extend(new);
        let n = i64::try_from(added.len() - before_len).unwrap_or(i64::MAX);
        if n > 0 {
            *per_year.entry(year).or_default() += n;
        }
    }
    added.sort_unstable();
    let users = merge_sorted(before, added);
    let schema = Arc::new(Schema::new(vec![
        Field::new("join_year", DataType::Int64, false),
        Field::new("n", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(per_year.keys().copied())),
        Arc::new(Int64Array::from_iter_values(per_year.values().copied())),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok((users, (schema, vec![batch])))
}

/// The union of two sorted lists without repeats (`b` holds none of `a`).
pub(super) fn merge_sorted(a: &[u128], b: Vec<u128>) -> Vec<u128> {
    if a.is_empty() {
        return b;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}
