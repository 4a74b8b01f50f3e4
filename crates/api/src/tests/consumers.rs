//! REST Proxy v2 consumers: the whole flow a Confluent client goes through, across a restart.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64::Engine;
use pinpipe_log::TopicKind;
use serde_json::{Value, json};

use super::{Api, BINARY_V2, JSON_V2, assert_kafka_error};
use crate::ApiConfig;

const V2: &str = "application/vnd.kafka.v2+json";
const BASE: &str = "/consumers/g/instances";

impl Api {
    async fn post_json(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.call("POST", uri, &[("content-type", V2), ("host", "proxy:8082")], body.to_string()).await;
        (s, v)
    }

    /// Reads records of `instance` in `group` as JSON (`timeout` ms).
    async fn read(&self, group: &str, instance: &str, query: &str) -> Vec<Value> {
        let uri = format!("/consumers/{group}/instances/{instance}/records?{query}");
        let (s, ct, v) = self.call("GET", &uri, &[("accept", JSON_V2)], "").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(ct, JSON_V2);
        v.as_array().unwrap().clone()
    }
}

fn offsets_of(records: &[Value]) -> Vec<u64> {
    records.iter().map(|r| r["offset"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn a_consumer_reads_commits_and_its_group_resumes_after_a_restart() {
    let api = Api::new();
    for i in 0..5 {
        let body = format!(r#"{{"records":[{{"key":"k{i}","value":{{"n":{i}}}}}]}}"#);
        assert_eq!(api.produce("t", JSON_V2, &body).await.0, StatusCode::OK);
    }
    // Create; a second instance of the same name is refused.
    let config = json!({"name":"c1","format":"json","auto.offset.reset":"earliest","auto.commit.enable":"false"});
    let (s, v) = api.post_json("/consumers/g", config.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"instance_id":"c1","base_uri":"http://proxy:8082/consumers/g/instances/c1"}));
    assert_kafka_error(api.post_json("/consumers/g", config).await, 409, 40902);

    // Subscribe; manual assignment is then refused; the subscription reads back.
    let (s, _) = api.post_json(&format!("{BASE}/c1/subscription"), json!({"topics":["t"]})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, _, v) = api.call("GET", &format!("{BASE}/c1/subscription"), &[], "").await;
    assert_eq!(v, json!({"topics":["t"]}));
    let assign = json!({"partitions":[{"topic":"t","partition":0}]});
    assert_kafka_error(api.post_json(&format!("{BASE}/c1/assignments"), assign).await, 409, 40901);
    let (_, _, v) = api.call("GET", &format!("{BASE}/c1/assignments"), &[], "").await;
    assert_eq!(v, json!({"partitions":[{"topic":"t","partition":0}]}));

    // Read everything, as Confluent renders it; the wrong embedded format is refused.
    let got = api.read("g", "c1", "timeout=0").await;
    assert_eq!(offsets_of(&got), [0, 1, 2, 3, 4]);
    assert_eq!(got[2], json!({"topic":"t","key":"k2","value":{"n":2},"partition":0,"offset":2}));
    let (s, _, v) = api.call("GET", &format!("{BASE}/c1/records"), &[("accept", BINARY_V2)], "").await;
    assert_kafka_error((s, v), 406, 40601);
    assert!(api.read("g", "c1", "timeout=0").await.is_empty(), "nothing new");

    // Commit the third record (offset 2): the committed offset is the next one, 3.
    let commit = json!({"offsets":[{"topic":"t","partition":0,"offset":2}]});
    assert_eq!(api.post_json(&format!("{BASE}/c1/offsets"), commit).await.0, StatusCode::OK);
    let query = json!({"partitions":[{"topic":"t","partition":0}]}).to_string();
    let (_, _, v) = api.call("GET", &format!("{BASE}/c1/offsets"), &[("content-type", V2)], query.clone()).await;
    assert_eq!(v, json!({"offsets":[{"topic":"t","partition":0,"offset":3,"metadata":""}]}));

    // Restart: instances are gone, the group's committed offset is not.
    let dir = api.stop();
    let api = Api::in_dir(dir, ApiConfig::default());
    let (s, _, v) = api.call("GET", &format!("{BASE}/c1/records"), &[("accept", JSON_V2)], "").await;
    assert_kafka_error((s, v), 404, 40403);
    let (s, v) =
        api.post_json("/consumers/g", json!({"name":"c2","format":"json","auto.offset.reset":"earliest"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    api.post_json(&format!("{BASE}/c2/subscription"), json!({"topic_pattern":"t|u"})).await;
    assert_eq!(offsets_of(&api.read("g", "c2", "timeout=0").await), [3, 4], "resumed from the committed offset");

    // Seeks: beginning, one offset, end; a partition not assigned is refused.
    let tp = json!({"partitions":[{"topic":"t","partition":0}]});
    assert_eq!(api.post_json(&format!("{BASE}/c2/positions/beginning"), tp.clone()).await.0, StatusCode::NO_CONTENT);
    assert_eq!(offsets_of(&api.read("g", "c2", "timeout=0").await), [0, 1, 2, 3, 4]);
    let to4 = json!({"offsets":[{"topic":"t","partition":0,"offset":4}]});
    assert_eq!(api.post_json(&format!("{BASE}/c2/positions"), to4).await.0, StatusCode::NO_CONTENT);
    assert_eq!(offsets_of(&api.read("g", "c2", "timeout=0").await), [4]);
    api.post_json(&format!("{BASE}/c2/positions/beginning"), tp.clone()).await;
    assert_eq!(api.post_json(&format!("{BASE}/c2/positions/end"), tp).await.0, StatusCode::NO_CONTENT);
    assert!(api.read("g", "c2", "timeout=0").await.is_empty());
    let other = json!({"partitions":[{"topic":"t","partition":1}]});
    assert_kafka_error(api.post_json(&format!("{BASE}/c2/positions/end"), other).await, 409, 40903);

    // A read waits for a record produced while it waits, and returns it well before its timeout.
    let started = Instant::now();
    let (got, produced) = tokio::join!(
        api.read("g", "c2", "timeout=20000"),
        api.produce("t", JSON_V2, r#"{"records":[{"value":"late"}]}"#)
    );
    assert_eq!(produced.0, StatusCode::OK);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["value"], "late");
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());

    // Delete: then gone.
    let (s, _, _) = api.call("DELETE", &format!("{BASE}/c2"), &[], "").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, v) = api.call("DELETE", &format!("{BASE}/c2"), &[], "").await;
    assert_kafka_error((s, v), 404, 40403);
}

#[tokio::test]
async fn binary_instances_limits_groups_and_auto_commit() {
    let api = Api::new();
    api.log.create_topic("multi", TopicKind::Topic, 4).await.unwrap();
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let raw: Vec<Vec<u8>> = (0u8..3).map(|i| vec![0, 255, i, b'\n']).collect();
    let records: Vec<Value> = raw.iter().map(|r| json!({"value": b64(r), "partition": 0})).collect();
    let (s, v) = api.produce("multi", BINARY_V2, &json!({ "records": records }).to_string()).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // A binary instance (the default format) assigned one partition by hand.
    let (s, v) = api.post_json("/consumers/bin", json!({"name":"b","auto.offset.reset":"earliest"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let assign = json!({"partitions":[{"topic":"multi","partition":0}]});
    assert_eq!(api.post_json("/consumers/bin/instances/b/assignments", assign).await.0, StatusCode::NO_CONTENT);
    assert_kafka_error(
        api.post_json("/consumers/bin/instances/b/subscription", json!({"topics":["multi"]})).await,
        409,
        40901,
    );
    let (s, ct, v) =
        api.call("GET", "/consumers/bin/instances/b/records?timeout=0", &[("accept", BINARY_V2)], "").await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, BINARY_V2), "{v}");
    let values: Vec<Vec<u8>> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| base64::engine::general_purpose::STANDARD.decode(r["value"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(values, raw);
    assert!(v[0]["key"].is_null());

    // max_bytes: at least one record, then no more than asked.
    api.post_json(
        "/consumers/bin/instances/b/positions/beginning",
        json!({"partitions":[{"topic":"multi","partition":0}]}),
    )
    .await;
    let (_, _, v) = api.call("GET", "/consumers/bin/instances/b/records?timeout=0&max_bytes=1", &[], "").await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    let (_, _, v) = api.call("GET", "/consumers/bin/instances/b/records?timeout=0&max_bytes=8", &[], "").await;
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");

    // Two subscribers of a group share the topic's partitions, disjoint and complete.
    for name in ["x", "y"] {
        api.post_json("/consumers/shared", json!({"name": name, "format":"json"})).await;
        api.post_json(&format!("/consumers/shared/instances/{name}/subscription"), json!({"topics":["multi"]})).await;
    }
    let mut all = Vec::new();
    for name in ["x", "y"] {
        let (_, _, v) = api.call("GET", &format!("/consumers/shared/instances/{name}/assignments"), &[], "").await;
        let parts: Vec<u64> =
            v["partitions"].as_array().unwrap().iter().map(|p| p["partition"].as_u64().unwrap()).collect();
        assert_eq!(parts.len(), 2, "{v}");
        all.extend(parts);
    }
    all.sort_unstable();
    assert_eq!(all, [0, 1, 2, 3]);

    // Auto-commit: what a read returned is committed by the next read or by the delete.
    api.post_json("/consumers/auto", json!({"name":"a","format":"binary","auto.offset.reset":"earliest"})).await;
    api.post_json("/consumers/auto/instances/a/assignments", json!({"partitions":[{"topic":"multi","partition":0}]}))
        .await;
    let (_, _, v) = api.call("GET", "/consumers/auto/instances/a/records?timeout=0", &[], "").await;
    assert_eq!(v.as_array().unwrap().len(), 3);
    api.call("DELETE", "/consumers/auto/instances/a", &[], "").await;
    api.post_json("/consumers/auto", json!({"name":"a2","format":"binary","auto.offset.reset":"earliest"})).await;
    api.post_json("/consumers/auto/instances/a2/assignments", json!({"partitions":[{"topic":"multi","partition":0}]}))
        .await;
    let (_, _, v) = api.call("GET", "/consumers/auto/instances/a2/offsets", &[], "").await;
    assert_eq!(v, json!({"offsets":[{"topic":"multi","partition":0,"offset":3,"metadata":""}]}));
    let (_, _, v) = api.call("GET", "/consumers/auto/instances/a2/records?timeout=0", &[], "").await;
    assert_eq!(v, json!([]), "nothing is read twice");
}

#[tokio::test]
async fn consumer_requests_are_validated_with_confluent_codes() {
    let api = Api::with(ApiConfig { max_consumer_instances: 2, ..ApiConfig::default() });
    assert_kafka_error(api.post_json("/consumers/g", json!({"format":"avro"})).await, 422, 42204);
    assert_kafka_error(api.post_json("/consumers/g", json!({"format":"xml"})).await, 422, 42204);
    assert_kafka_error(api.post_json("/consumers/g", json!({"auto.offset.reset":"middle"})).await, 422, 42204);
    assert_kafka_error(api.post_json("/consumers/g", json!({"name":"../x"})).await, 400, 40002);
    let (s, _, v) = api.call("POST", "/consumers/..%2Fx", &[("content-type", V2)], "{}").await;
    assert_kafka_error((s, v), 400, 40002);
    let (s, _, v) = api.call("POST", "/consumers/g", &[("content-type", "text/plain")], "{}").await;
    assert_kafka_error((s, v), 415, 415);
    let (s, _, v) = api.call("POST", "/consumers/g", &[("content-type", V2)], "{nope").await;
    assert_kafka_error((s, v), 400, 400);
    // Without a body: a generated name, binary, latest.
    let (s, _, v) = api.call("POST", "/consumers/g", &[], "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = v["instance_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("rest-consumer-"), "{id}");
    let sub = format!("/consumers/g/instances/{id}/subscription");
    assert_kafka_error(api.post_json(&sub, json!({})).await, 422, 422);
    assert_kafka_error(api.post_json(&sub, json!({"topics":["a"],"topic_pattern":"b"})).await, 422, 422);
    assert_kafka_error(api.post_json(&sub, json!({"topic_pattern":"("})).await, 422, 422);
    assert_kafka_error(api.post_json(&sub, json!({"topics":["../etc"]})).await, 400, 40002);
    // The instance limit.
    api.post_json("/consumers/g", json!({"name":"second"})).await;
    assert_kafka_error(api.post_json("/consumers/g", json!({"name":"third"})).await, 429, 429);
    let (s, _, v) = api.call("GET", "/consumers/g/instances/nobody/records", &[], "").await;
    assert_kafka_error((s, v), 404, 40403);
    assert!(!api._dir.path().join("x").exists(), "nothing outside the data directory");
}
