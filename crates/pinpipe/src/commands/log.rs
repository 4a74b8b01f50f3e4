//! `pinpipe log ...`: inspect the log like kcat or kafka-console-consumer: where the topics live
//! (the embedded log, opened read-only so that it works beside a running `pinpipe serve`, or
//! Kafka with `--log kafka://...`). Only `log repair` changes anything: it cuts the damage of the
//! embedded log's partitions, with the log's writer stopped.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use pinpipe_log::{OffsetLog, ReadLimits, StoredRecord};
use serde_json::value::RawValue;

use crate::cli::LogCommand;
use crate::config::Loaded;
use crate::output::{self, line};

/// Runs one `pinpipe log` subcommand.
pub async fn run(loaded: &Loaded, cmd: LogCommand) -> anyhow::Result<()> {
    if let LogCommand::Repair { topic, partition } = &cmd {
        return repair(loaded, topic.as_deref(), *partition);
    }
    let log = super::open_topics(loaded, super::Access::Reader).await?;
    match cmd {
        LogCommand::Topics { json } => topics(&*log, json).await,
        LogCommand::Read { topic, partition, from, follow, limit } => {
            read(log, &topic, partition, &from, follow, limit).await
        }
        LogCommand::Repair { .. } => Ok(()),
    }
}

/// `pinpipe log repair`: one line per cut (JSON), then a summary.
fn repair(loaded: &Loaded, topic: Option<&str>, partition: Option<u32>) -> anyhow::Result<()> {
    let dir = &loaded.resolved.log.dir;
    let repaired = pinpipe_log::embedded::EmbeddedLog::repair(dir, topic, partition).map_err(|e| match e {
        pinpipe_log::Error::Locked(_) => anyhow::anyhow!(
            "the log at {} is open for writing by another process: stop it (pinpipe serve, up) and run the repair again",
            dir.display()
        ),
        other => other.into(),
    })?;
    for r in &repaired {
        line(&serde_json::to_string(r)?)?;
    }
    let lost: u64 = repaired.iter().map(|r| r.lost.1 - r.lost.0).sum();
    line(&format!(
        "log repair: {} damage(s) cut in {}, {} records lost (offsets never reused)",
        repaired.len(),
        dir.display(),
        output::int(lost)
    ))?;
    Ok(())
}

async fn topics(log: &dyn OffsetLog, json: bool) -> anyhow::Result<()> {
    let topics = log.topics().await?;
    if !json {
        line(&format!("{:<40} {:<6} {:>10} {:>14}", "NAME", "KIND", "PARTITIONS", "RECORDS"))?;
    }
    for t in topics {
        let offsets = log.offsets(&t.name).await?;
        let records: u64 = offsets.iter().map(|o| o.end - o.start).sum();
        if json {
            let v = serde_json::json!({ "name": t.name, "kind": t.kind, "partitions": offsets, "created_ms": t.created_ms });
            line(&v.to_string())?;
        } else {
            let kind = serde_json::to_value(t.kind)?.as_str().unwrap_or_default().to_owned();
            line(&format!("{:<40} {:<6} {:>10} {:>14}", t.name, kind, t.partitions, output::int(records)))?;
        }
    }
    Ok(())
}

/// One record as a JSON line: values (and keys) that are JSON are embedded as JSON, other UTF-8
/// as strings, anything else as base64 under `value_base64` / `key_base64`.
fn render(topic: &str, partition: u32, r: &StoredRecord) -> String {
    let mut out = serde_json::Map::new();
    out.insert("topic".into(), topic.into());
    out.insert("partition".into(), partition.into());
    out.insert("offset".into(), r.offset.into());
    out.insert("timestamp".into(), r.timestamp_ms.into());
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match r.key.as_deref().map(std::str::from_utf8) {
        None => {
            out.insert("key".into(), serde_json::Value::Null);
        }
        Some(Ok(k)) => {
            out.insert("key".into(), k.into());
        }
        Some(Err(_)) => {
            out.insert("key_base64".into(), b64(r.key.as_deref().unwrap_or_default()).into());
        }
    }
    let value = std::str::from_utf8(&r.value).ok();
    let json = value.and_then(|v| serde_json::from_str::<&RawValue>(v).ok());
    let mut text = serde_json::Value::Object(out).to_string();
    // Splice the value in as raw JSON (no re-encoding).
    text.pop();
    match (json, value) {
        (Some(raw), _) => text.push_str(&format!(",\"value\":{}}}", raw.get())),
        (None, Some(s)) => text.push_str(&format!(",\"value\":{}}}", serde_json::Value::from(s))),
        (None, None) => text.push_str(&format!(",\"value_base64\":\"{}\"}}", b64(&r.value))),
    }
    text
}

async fn read(
    log: Arc<dyn OffsetLog>,
    topic: &str,
    partition: Option<u32>,
    from: &str,
    follow: bool,
    limit: Option<u64>,
) -> anyhow::Result<()> {
    let offsets = log.offsets(topic).await?;
    let chosen: Vec<_> = match partition {
        Some(p) => match offsets.iter().find(|o| o.partition == p) {
            Some(o) => vec![*o],
            None => bail!("topic {topic} has no partition {p} (it has {})", offsets.len()),
        },
        None => offsets,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<anyhow::Result<String>>(1024);
    for o in chosen {
        let start = match from {
            "beginning" => o.start,
            "end" => o.end,
            n => n.parse::<u64>().with_context(|| format!("--from {n:?}: use an offset, `beginning` or `end`"))?,
        };
        let (log, tx, topic) = (Arc::clone(&log), tx.clone(), topic.to_owned());
        let stop_at = o.end;
        tokio::spawn(async move {
            let mut offset = start.max(o.start);
            loop {
                if !follow && offset >= stop_at {
                    return;
                }
                let batch = match log
                    .read(&topic, o.partition, offset, ReadLimits { max_records: 1000, max_bytes: 4 << 20 })
                    .await
                {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                if batch.is_empty() {
                    if !follow {
                        return;
                    }
                    if let Err(e) = log.wait_for(&topic, o.partition, offset, Duration::from_secs(1)).await {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                    continue;
                }
                for r in batch {
                    if !follow && r.offset >= stop_at {
                        return;
                    }
                    offset = r.offset + 1;
                    if tx.send(Ok(render(&topic, o.partition, &r))).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
    drop(tx);
    let mut printed = 0u64;
    while let Some(item) = rx.recv().await {
        if limit.is_some_and(|l| printed >= l) {
            break;
        }
        line(&item?)?;
        printed += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn rec(key: Option<&[u8]>, value: &[u8]) -> StoredRecord {
        StoredRecord {
            offset: 7,
            timestamp_ms: 1,
            key: key.map(Bytes::copy_from_slice),
            value: Bytes::copy_from_slice(value),
        }
    }

    #[test]
    fn renders_json_text_and_binary() {
        assert_eq!(
            render("t", 0, &rec(None, br#"{"a":1}"#)),
            r#"{"topic":"t","partition":0,"offset":7,"timestamp":1,"key":null,"value":{"a":1}}"#
        );
        assert_eq!(
            render("t", 1, &rec(Some(b"pk"), b"plain text")),
            r#"{"topic":"t","partition":1,"offset":7,"timestamp":1,"key":"pk","value":"plain text"}"#
        );
        assert_eq!(
            render("t", 0, &rec(Some(&[0xff]), &[0, 0xff])),
            r#"{"topic":"t","partition":0,"offset":7,"timestamp":1,"key_base64":"/w==","value_base64":"AP8="}"#
        );
    }
}
