//! Where an instance stands: committing offsets and reading them back, and seeking to an
//! offset, the beginning or the end.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::*;

#[derive(Deserialize)]
struct OffsetRef {
    topic: String,
    partition: u32,
    offset: u64,
}

#[derive(Deserialize)]
struct OffsetsBody {
    offsets: Option<Vec<OffsetRef>>,
}

/// `POST .../offsets`: commits the given offsets (each the last record processed, so the
/// committed offset is one more, as Confluent's), or, without a body, every position read so far.
pub(super) async fn commit(
    State(s): State<AppState>,
    ConsumerInstance(i): ConsumerInstance,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let req: Option<OffsetsBody> = json_body(&s, &headers, body).await?;
    let mut reading = i.reading.lock().await;
    let offsets: Vec<(TopicPartition, u64)> = match req.and_then(|r| r.offsets) {
        Some(list) => list
            .into_iter()
            .map(|o| {
                name("topic", &o.topic)?;
                Ok(((o.topic, o.partition), o.offset.saturating_add(1)))
            })
            .collect::<Result<_>>()?,
        None => reading.positions.iter().map(|(tp, o)| (tp.clone(), *o)).collect(),
    };
    s.consumers.offsets.commit(&i.group, &offsets).await.map_err(store_error)?;
    reading.auto_committed.extend(offsets);
    Ok(StatusCode::OK.into_response())
}

/// `GET .../offsets`: the group's committed offsets of the partitions in the body (without a
/// body: of the instance's current assignment).
pub(super) async fn committed(
    State(s): State<AppState>,
    ConsumerInstance(i): ConsumerInstance,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let req: Option<PartitionsBody> = json_body(&s, &headers, body).await?;
    let parts = match req {
        Some(r) => partition_list(r.partitions)?,
        None => fetch::assigned(&s, &i).await?,
    };
    let committed = s.consumers.offsets.committed(&i.group).map_err(store_error)?;
    let out: Vec<Value> = parts
        .iter()
        .filter_map(|tp| committed.get(tp).map(|o| (tp, o)))
        .map(|((t, p), o)| json!({ "topic": t, "partition": p, "offset": o, "metadata": "" }))
        .collect();
    Ok(ok_json(&json!({ "offsets": out })))
}

/// Where a seek goes.
enum Seek {
    To(Vec<(TopicPartition, u64)>),
    Beginning(Vec<TopicPartition>),
    End(Vec<TopicPartition>),
}

async fn seek_to(s: &AppState, i: &Instance, seek: Seek) -> Result<Response> {
    let assigned = fetch::assigned(s, i).await?;
    let targets: Vec<&TopicPartition> = match &seek {
        Seek::To(list) => list.iter().map(|(tp, _)| tp).collect(),
        Seek::Beginning(list) | Seek::End(list) => list.iter().collect(),
    };
    if let Some((t, p)) = targets.iter().find(|tp| !assigned.contains(tp)) {
        return Err(illegal_state(format!("No current assignment for partition {t}-{p}")));
    }
    let mut positions = Vec::new();
    match seek {
        Seek::To(list) => positions = list,
        Seek::Beginning(list) | Seek::End(list) if list.is_empty() => {}
        Seek::Beginning(list) => {
            for tp in list {
                let o = fetch::partition_offsets(s, &tp).await?;
                positions.push((tp, o.start));
            }
        }
        Seek::End(list) => {
            for tp in list {
                let o = fetch::partition_offsets(s, &tp).await?;
                positions.push((tp, o.end));
            }
        }
    }
    let mut reading = i.reading.lock().await;
    reading.positions.extend(positions);
    Ok(no_content())
}

/// `POST .../positions`.
pub(super) async fn seek(
    State(s): State<AppState>,
    ConsumerInstance(i): ConsumerInstance,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let req: OffsetsBody = required_body(&s, &headers, body, "offsets").await?;
    let list = req
        .offsets
        .unwrap_or_default()
        .into_iter()
        .map(|o| {
            name("topic", &o.topic)?;
            Ok(((o.topic, o.partition), o.offset))
        })
        .collect::<Result<_>>()?;
    seek_to(&s, &i, Seek::To(list)).await
}

async fn seek_partitions(s: &AppState, i: &Instance, headers: &HeaderMap, body: Body, end: bool) -> Result<Response> {
    let req: PartitionsBody = required_body(s, headers, body, "partitions").await?;
    let list = partition_list(req.partitions)?;
    seek_to(s, i, if end { Seek::End(list) } else { Seek::Beginning(list) }).await
}

/// `POST .../positions/beginning`.
pub(super) async fn seek_beginning(
    State(s): State<AppState>,
    ConsumerInstance(i): ConsumerInstance,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    seek_partitions(&s, &i, &headers, body, false).await
}

/// `POST .../positions/end`.
pub(super) async fn seek_end(
    State(s): State<AppState>,
    ConsumerInstance(i): ConsumerInstance,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    seek_partitions(&s, &i, &headers, body, true).await
}
