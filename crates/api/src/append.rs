//! Appending a request's records, shared by both APIs: grouped by partition, one append per
//! partition (concurrently), each record's position or its partition's error in request order,
//! and the appended records and bytes counted in the metrics.

use std::collections::BTreeMap;

use bytes::Bytes;
use pinpipe_log::{Position, Record};

use crate::AppState;

/// Appends `records` (record i to partition `targets[i]`) to `log`, one batch per partition,
/// and returns each record's position or its partition's error, in request order. Shared by
/// both APIs.
pub(crate) async fn grouped(
    s: &AppState,
    log: &dyn pinpipe_log::Log,
    topic: &str,
    targets: &[u32],
    records: Vec<Record>,
) -> Vec<Result<Position, std::sync::Arc<pinpipe_log::Error>>> {
    let size =
        |r: &[Record]| r.iter().map(|r| (r.value.len() + r.key.as_ref().map_or(0, Bytes::len)) as u64).sum::<u64>();
    // The common case, every record to one partition: one append, nothing to regroup.
    if let Some(&p) = targets.first()
        && targets.iter().all(|t| *t == p)
    {
        let (count, bytes) = (records.len() as u64, size(&records));
        return match log.append_positioned(topic, p, records).await {
            Ok(positions) => {
                s.metrics.appended(topic, count, bytes);
                positions.into_iter().map(Ok).collect()
            }
            Err(e) => vec![Err(std::sync::Arc::new(e)); targets.len()],
        };
    }
    let mut groups: BTreeMap<u32, (Vec<usize>, Vec<Record>)> = BTreeMap::new();
    for (i, (p, r)) in targets.iter().zip(records).enumerate() {
        let g = groups.entry(*p).or_default();
        g.0.push(i);
        g.1.push(r);
    }
    // One append per partition (the common case: one partition), concurrently.
    let appends = groups.into_values().map(|(indexes, records)| async move {
        let (count, bytes) = (records.len() as u64, size(&records));
        let outcome = log.append_positioned(topic, targets[indexes[0]], records).await;
        if outcome.is_ok() {
            s.metrics.appended(topic, count, bytes);
        }
        (indexes, outcome)
    });
    let mut out: Vec<Result<Position, std::sync::Arc<pinpipe_log::Error>>> = Vec::with_capacity(targets.len());
    out.resize_with(targets.len(), || Ok(Position::Offset(0)));
    for (indexes, outcome) in futures_util::future::join_all(appends).await {
        match outcome {
            Ok(positions) => {
                for (i, p) in indexes.into_iter().zip(positions) {
                    out[i] = Ok(p);
                }
            }
            Err(e) => {
                let e = std::sync::Arc::new(e);
                for i in indexes {
                    out[i] = Err(std::sync::Arc::clone(&e));
                }
            }
        }
    }
    out
}
