//! The cleaning rules of DESIGN.md "Cleaning", written once and shared by the batch job and the
//! streaming job.
//!
//! * [`rules`]: the per-value rules (placeholders to null, `k`/`M` follower counts, save
//!   locations, user names, timestamps) as small pure functions.
//! * [`cleaner`]: [`Cleaner`] turns raw JSON records of one kind, one at a time, into an Arrow
//!   batch of the clean table (columns and types of `pinpipe_model::schema::clean`), sending every
//!   record that cannot be parsed or typed to a [`DeadLetter`] with its reason and origin.
//! * [`fingerprint`]: 128-bit row fingerprints, by which exact duplicates are recognised, and a
//!   set of them that many threads share.
//! * [`dedup`]: exact removal of duplicate clean rows across cleaned chunks, keeping the first
//!   occurrence (the batch job against everything it ingests and its tables hold, the streaming
//!   job within one micro-batch).
//! * [`raw_batch`]: raw records as Arrow columns: how the sink writes Parquet objects.
//! * `columns`: such batches cleaned column by column through the same rules
//!   ([`Cleaner::push_raw_batch`]), with the same rows and dead letters as their JSON; text
//!   stays in string views ([`with_string_views`]: what to ask a Parquet reader for) until the
//!   rows kept are handed on ([`Cleaned::into_parts`]).
//! * [`seen`]: fingerprints of the rows a table already holds, for the streaming job's
//!   de-duplication across micro-batches.

pub mod cleaner;
mod columns;
pub mod dead_letter;
pub mod dedup;
pub mod error;
pub mod fingerprint;
mod raw;
pub mod raw_batch;
pub mod rules;
pub mod seen;

pub use cleaner::{Cleaned, Cleaner};
pub use columns::with_string_views;
pub use dead_letter::{DeadLetter, Origin};
pub use dedup::dedup;
pub use error::{Error, Result};
pub use fingerprint::{FingerprintSet, Fingerprinter, raw_fingerprint};
pub use raw_batch::RawBuilder;
pub use seen::Seen;

/// The columns of `batch`, in order, cast to the types of `schema`'s fields where they differ
/// (e.g. string views to plain strings).
pub(crate) fn cast_to(
    schema: &arrow_schema::Schema,
    batch: &arrow_array::RecordBatch,
) -> Result<Vec<arrow_array::ArrayRef>> {
    schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| {
            if c.data_type() == f.data_type() {
                Ok(std::sync::Arc::clone(c))
            } else {
                Ok(arrow_cast::cast(c, f.data_type())?)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
