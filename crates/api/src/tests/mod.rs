//! Contract tests of every route and error case, through `app().oneshot(...)` (no socket).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use pinpipe_log::embedded::EmbeddedLog;
use pinpipe_log::{LogConfig, OffsetLog, ReadLimits, TopicKind, partitioner};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{ApiConfig, AppState, app};

mod consumers;
mod overload;
mod shards;

pub(crate) struct Api {
    _dir: tempfile::TempDir,
    log: Arc<dyn OffsetLog>,
    router: axum::Router,
    state: AppState,
}

pub(crate) const JSON_V2: &str = "application/vnd.kafka.json.v2+json";
pub(crate) const BINARY_V2: &str = "application/vnd.kafka.binary.v2+json";

impl Api {
    fn with(config: ApiConfig) -> Self {
        Self::in_dir(tempfile::tempdir().unwrap(), config)
    }

    /// An API over the log (and consumer offsets) in `dir`: a second `in_dir` on the same
    /// directory after the first is dropped is a restart.
    pub(crate) fn in_dir(dir: tempfile::TempDir, config: ApiConfig) -> Self {
        let log: Arc<dyn OffsetLog> =
            Arc::new(EmbeddedLog::open(&LogConfig::default().validate(dir.path()).unwrap()).unwrap());
        Self::over(dir, log, config)
    }

    /// An API over `log`, keeping its state in `dir`.
    pub(crate) fn over(dir: tempfile::TempDir, log: Arc<dyn OffsetLog>, config: ApiConfig) -> Self {
        let mut resolved = config.validate(1).unwrap();
        resolved.state_dir = Some(dir.path().join("api"));
        let state = AppState::new(Arc::clone(&log), resolved);
        Api { _dir: dir, log, router: app(state.clone()), state }
    }

    /// Stops this API and hands back its directory.
    pub(crate) fn stop(self) -> tempfile::TempDir {
        let Api { _dir, log, router, state } = self;
        drop((router, state, log));
        _dir
    }

    fn new() -> Self {
        Self::with(ApiConfig::default())
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> (StatusCode, String, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.router.clone().oneshot(req.body(body.into()).unwrap()).await.unwrap();
        let status = resp.status();
        let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, ct, value)
    }

    pub(crate) async fn produce(&self, topic: &str, ct: &str, body: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.call("POST", &format!("/topics/{topic}"), &[("content-type", ct)], body.to_owned()).await;
        (s, v)
    }

    pub(crate) async fn values(&self, topic: &str, partition: u32) -> Vec<String> {
        self.log
            .read(topic, partition, 0, ReadLimits::default())
            .await
            .unwrap()
            .into_iter()
            .map(|r| String::from_utf8(r.value.to_vec()).unwrap())
            .collect()
    }

    async fn topic_names(&self) -> Vec<String> {
        self.log.topics().await.unwrap().into_iter().map(|t| t.name).collect()
    }
}

pub(crate) fn assert_kafka_error(got: (StatusCode, Value), status: u16, code: u64) {
    assert_eq!(got.0.as_u16(), status, "{}", got.1);
    assert_eq!(got.1["error_code"], code, "{}", got.1);
    assert!(got.1["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", got.1);
    assert_eq!(got.1.as_object().unwrap().len(), 2, "exactly error_code and message: {}", got.1);
}

pub(crate) fn assert_kinesis_error(got: (StatusCode, String, Value), status: u16, kind: &str) {
    assert_eq!(got.0.as_u16(), status, "{}", got.2);
    assert_eq!(got.2["__type"], kind, "{}", got.2);
    assert!(got.2["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(got.1, "application/x-amz-json-1.1");
}

#[tokio::test]
async fn produce_json_answers_like_the_rest_proxy_and_stores_the_exact_value() {
    let api = Api::new();
    let pin = r#"{"index":7528,"unique_id":"fbe53c66","title":"t","follower_count":"51k"}"#;
    let (status, ct, body) = api
        .call(
            "POST",
            "/topics/pinterest.pin",
            &[("content-type", JSON_V2)],
            format!(r#"{{"records":[{{"value":{pin}}}]}}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct, "application/vnd.kafka.v2+json");
    assert_eq!(
        body,
        json!({"offsets":[{"partition":0,"offset":0,"error_code":null,"error":null}],"key_schema_id":null,"value_schema_id":null})
    );
    // Auto-created, value stored byte for byte.
    assert_eq!(api.topic_names().await, ["pinterest.pin"]);
    assert_eq!(api.values("pinterest.pin", 0).await, [pin]);
    // More records: dense offsets in request order; other accepted content types.
    let (s, v) = api
        .produce("pinterest.pin", "application/json", r#"{"records":[{"value":1},{"value":"two"},{"value":[3]}]}"#)
        .await;
    assert_eq!(s, StatusCode::OK);
    let offsets: Vec<u64> = v["offsets"].as_array().unwrap().iter().map(|o| o["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets, [1, 2, 3]);
    let (s, _) = api
        .produce(
            "pinterest.pin",
            "application/vnd.kafka.v2+json; charset=utf-8",
            r#"{"records":[{"value":{"a" : 1}}]}"#,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Pretty-printed values are stored on one line: their line breaks become spaces, nothing else
    // of the value's text changes.
    let (s, _) = api.produce("pinterest.pin", JSON_V2, "{\"records\":[{\"value\":{\n  \"b\": 2\n}}]}").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(api.values("pinterest.pin", 0).await[1..], ["1", "\"two\"", "[3]", "{\"a\" : 1}", "{   \"b\": 2 }"]);
}

#[tokio::test]
async fn produce_binary_decodes_base64_keys_and_values() {
    let api = Api::new();
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let body = json!({"records":[{"key": b64(b"k1"), "value": b64(&[0, 255, 10, 13])}]}).to_string();
    let (s, v) = api.produce("bin", BINARY_V2, &body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let stored = api.log.read("bin", 0, 0, ReadLimits::default()).await.unwrap();
    assert_eq!(&stored[0].value[..], &[0, 255, 10, 13]);
    assert_eq!(stored[0].key.as_deref(), Some(&b"k1"[..]));
    assert_kafka_error(api.produce("bin", BINARY_V2, r#"{"records":[{"value":"not base64!"}]}"#).await, 422, 42203);
    assert_kafka_error(api.produce("bin", BINARY_V2, r#"{"records":[{"value":{"an":"object"}}]}"#).await, 422, 42203);
    assert_kafka_error(
        api.produce("bin", BINARY_V2, r#"{"records":[{"key":"%%%","value":"aGk="}]}"#).await,
        422,
        42203,
    );
    assert_eq!(api.log.offsets("bin").await.unwrap()[0].end, 1, "failed requests wrote nothing");
}

#[tokio::test]
async fn malformed_produce_requests_get_their_error_and_write_nothing() {
    let api =
        Api::with(ApiConfig { max_records: 3, max_record_bytes: 100, max_body_bytes: 2048, ..ApiConfig::default() });
    let cases: &[(&str, &str, u16, u64)] = &[
        // Confluent's codes: not JSON or the wrong shape is 400/400 (rest-utils' Jackson
        // mappers), a broken constraint 422/422.
        (JSON_V2, "this is not json", 400, 400),
        (JSON_V2, r#"{"records":[{"value":1}"#, 400, 400),
        (JSON_V2, "", 400, 400),
        (JSON_V2, r#"{"foo":1}"#, 400, 400),
        (JSON_V2, r#"{"records":{"value":1}}"#, 400, 400),
        (JSON_V2, r#"{"records":[{"value":1,"colour":"red"}]}"#, 400, 400),
        (JSON_V2, r#"{"records":[{"value":1,"partition":-1}]}"#, 400, 400),
        (JSON_V2, r#"[1,2]"#, 400, 400),
        (JSON_V2, r#"{}"#, 422, 422),
        (JSON_V2, r#"{"records":[]}"#, 422, 422),
        (JSON_V2, r#"{"records":[{"key":"k"}]}"#, 422, 422),
        (JSON_V2, r#"{"records":[{"value":1},{"value":null}]}"#, 422, 422),
        (JSON_V2, r#"{"records":[{"value":1},{"value":2},{"value":3},{"value":4}]}"#, 422, 422),
        ("text/plain", r#"{"records":[{"value":1}]}"#, 415, 415),
        ("application/vnd.kafka.avro.v2+json", r#"{"records":[{"value":1}]}"#, 415, 415),
    ];
    for (ct, body, status, code) in cases {
        let got = api.produce("t", ct, body).await;
        assert_eq!((got.0.as_u16(), got.1["error_code"].as_u64().unwrap()), (*status, *code), "{body}: {}", got.1);
        assert_kafka_error(got, *status, *code);
    }
    let big_value = format!(r#"{{"records":[{{"value":"{}"}}]}}"#, "x".repeat(200));
    assert_kafka_error(api.produce("t", JSON_V2, &big_value).await, 422, 422);
    let huge = format!(r#"{{"records":[{{"value":"{}"}}]}}"#, "x".repeat(5000));
    assert_kafka_error(api.produce("t", JSON_V2, &huge).await, 413, 413);
    // Without a content type.
    let (s, _, v) = api.call("POST", "/topics/t", &[], r#"{"records":[{"value":1}]}"#).await;
    assert_kafka_error((s, v), 415, 415);
    assert!(api.topic_names().await.is_empty(), "nothing was created");
}

#[tokio::test]
async fn names_are_validated_and_unknown_topics_need_auto_create() {
    let api = Api::with(ApiConfig { auto_create_topics: false, ..ApiConfig::default() });
    let body = r#"{"records":[{"value":1}]}"#;
    assert_kafka_error(api.produce("missing", JSON_V2, body).await, 404, 40401);
    for bad in ["..", "..%2F..%2Fetc", "a%2Fb", "a%20b", "%C3%A9", &"x".repeat(250)] {
        assert_kafka_error(api.produce(bad, JSON_V2, body).await, 400, 40002);
    }
    let (s, _, v) = api.call("GET", "/topics/..%2Fsecret", &[], "").await;
    assert_kafka_error((s, v), 400, 40002);
    assert!(api.topic_names().await.is_empty());
    let dirs: Vec<_> = std::fs::read_dir(api._dir.path().join("log/topics")).unwrap().collect();
    assert!(dirs.is_empty(), "no directory was created");
}

#[tokio::test]
async fn partitions_keys_and_metadata_routes() {
    let api = Api::new();
    api.log.create_topic("t", TopicKind::Topic, 3).await.unwrap();
    api.log.create_topic("s", TopicKind::Stream, 1).await.unwrap();
    // Explicit partitions, keys hashed as Kafka does, keyless records kept together.
    let (s, v) = api
        .produce(
            "t",
            JSON_V2,
            r#"{"records":[{"value":1,"partition":2},{"key":"user-1","value":2},{"value":3},{"value":4}]}"#,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let parts: Vec<u64> = v["offsets"].as_array().unwrap().iter().map(|o| o["partition"].as_u64().unwrap()).collect();
    assert_eq!(parts[0], 2);
    assert_eq!(parts[1], u64::from(partitioner::kafka_partition(b"\"user-1\"", 3)));
    assert_eq!(parts[2], parts[3]);
    let on_1 = parts.iter().filter(|p| **p == 1).count() as u64;
    assert_kafka_error(
        api.produce("t", JSON_V2, r#"{"records":[{"value":1},{"value":2,"partition":3}]}"#).await,
        404,
        40402,
    );
    // One partition's route.
    let (s, _, v) = api
        .call(
            "POST",
            "/topics/t/partitions/1",
            &[("content-type", JSON_V2)],
            r#"{"records":[{"value":"p1"},{"value":"p1b"}]}"#,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["offsets"].as_array().unwrap().iter().all(|o| o["partition"] == 1));
    let (s, _, v) =
        api.call("POST", "/topics/t/partitions/9", &[("content-type", JSON_V2)], r#"{"records":[{"value":1}]}"#).await;
    assert_kafka_error((s, v), 404, 40402);
    let ends: Vec<u64> = api.log.offsets("t").await.unwrap().iter().map(|o| o.end).collect();
    assert_eq!(ends.iter().sum::<u64>(), 6);

    let (s, ct, v) = api.call("GET", "/topics", &[], "").await;
    assert_eq!((s, ct.as_str(), v), (StatusCode::OK, "application/vnd.kafka.v2+json", json!(["t"])));
    let (_, _, v) = api.call("GET", "/topics/t", &[], "").await;
    assert_eq!(v["name"], "t");
    assert_eq!(v["partitions"].as_array().unwrap().len(), 3);
    assert_eq!(
        v["partitions"][0],
        json!({"partition":0,"leader":0,"replicas":[{"broker":0,"leader":true,"in_sync":true}]})
    );
    let (_, _, v) = api.call("GET", "/topics/t/partitions", &[], "").await;
    assert_eq!(v.as_array().unwrap().len(), 3);
    let (_, _, v) = api.call("GET", "/topics/t/partitions/1", &[], "").await;
    assert_eq!(v["partition"], 1);
    let (_, _, v) = api.call("GET", "/topics/t/partitions/1/offsets", &[], "").await;
    assert_eq!(v, json!({"beginning_offset":0,"end_offset":2 + on_1}));
    let (s, _, v) = api.call("GET", "/topics/nope", &[], "").await;
    assert_kafka_error((s, v), 404, 40401);
    let (s, _, v) = api.call("GET", "/topics/t/partitions/7", &[], "").await;
    assert_kafka_error((s, v), 404, 40402);
    let (s, _, v) = api.call("GET", "/topics/t/partitions/x/offsets", &[], "").await;
    assert_kafka_error((s, v), 404, 40402);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_family_body() {
    let api = Api::new();
    let (s, _, v) = api.call("DELETE", "/topics/t", &[], "").await;
    assert_kafka_error((s, v), 405, 405);
    let (s, _, v) = api.call("PUT", "/topics", &[], "").await;
    assert_kafka_error((s, v), 405, 405);
    let (s, _, v) = api.call("GET", "/no/such/route", &[], "").await;
    assert_kafka_error((s, v), 404, 404);
    assert_kinesis_error(api.call("PATCH", "/streams/s", &[], "").await, 405, "UnknownOperationException");
    assert_kinesis_error(api.call("POST", "/streams/s/record", &[], "{}").await, 405, "UnknownOperationException");
}

#[tokio::test]
async fn stream_admin_routes_answer_like_kinesis() {
    let api = Api::new();
    let (s, ct, v) = api
        .call("POST", "/streams/streaming-p-pin", &[("content-type", "application/json")], r#"{"ShardCount":2}"#)
        .await;
    assert_eq!((s, ct.as_str(), v), (StatusCode::OK, "application/x-amz-json-1.1", json!({})));
    let (s, _, _) = api.call("POST", "/streams/streaming-p-geo", &[], "").await;
    assert_eq!(s, StatusCode::OK);
    assert_kinesis_error(api.call("POST", "/streams/streaming-p-pin", &[], "").await, 400, "ResourceInUseException");
    assert_kinesis_error(
        api.call("POST", "/streams/zero", &[], r#"{"ShardCount":0}"#).await,
        400,
        "ValidationException",
    );
    assert_kinesis_error(
        api.call("POST", "/streams/many", &[], r#"{"ShardCount":5000}"#).await,
        400,
        "LimitExceededException",
    );
    assert_kinesis_error(
        api.call("POST", "/streams/bad", &[], r#"{"ShardCount":"#).await,
        400,
        "SerializationException",
    );
    assert_kinesis_error(api.call("POST", "/streams/a%2F..", &[], "").await, 400, "ValidationException");

    let (_, _, v) = api.call("GET", "/streams", &[], "").await;
    assert_eq!(v["StreamNames"], json!(["streaming-p-geo", "streaming-p-pin"]));
    assert_eq!(v["HasMoreStreams"], false);
    let (_, _, v) = api.call("GET", "/streams/streaming-p-pin", &[], "").await;
    let d = &v["StreamDescription"];
    assert_eq!(d["StreamName"], "streaming-p-pin");
    assert_eq!(d["StreamStatus"], "ACTIVE");
    assert_eq!(d["StreamARN"], "arn:aws:kinesis:us-east-1:000000000000:stream/streaming-p-pin");
    let shards = d["Shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    assert_eq!(shards[0]["ShardId"], "shardId-000000000000");
    assert_eq!(shards[0]["HashKeyRange"]["StartingHashKey"], "0");
    assert_eq!(shards[0]["HashKeyRange"]["EndingHashKey"], "170141183460469231731687303715884105727");
    assert_eq!(shards[1]["HashKeyRange"]["EndingHashKey"], u128::MAX.to_string());

    let (s, _, v) = api.call("DELETE", "/streams/streaming-p-geo", &[], "").await;
    assert_eq!((s, v), (StatusCode::OK, json!({})));
    assert_kinesis_error(api.call("GET", "/streams/streaming-p-geo", &[], "").await, 400, "ResourceNotFoundException");
    assert_kinesis_error(
        api.call("DELETE", "/streams/streaming-p-geo", &[], "").await,
        400,
        "ResourceNotFoundException",
    );
}

#[tokio::test]
async fn put_record_and_put_records_store_the_data_json_on_the_hashed_shard() {
    let api = Api::new();
    api.call("POST", "/streams/streaming-p-pin", &[], r#"{"ShardCount":4}"#).await;
    let data = r#"{"index":1,"title":"x"}"#;
    let body = format!(r#"{{"StreamName":"streaming-p-pin","Data":{data},"PartitionKey":"partition-1"}}"#);
    let (s, ct, v) =
        api.call("PUT", "/streams/streaming-p-pin/record", &[("content-type", "application/json")], body).await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "application/x-amz-json-1.1"), "{v}");
    let shard = partitioner::kinesis_shard("partition-1", 4);
    assert_eq!(v["ShardId"], partitioner::shard_id(shard));
    assert_eq!(v["SequenceNumber"], partitioner::sequence_number(shard, 0));
    let stored = api.log.read("streaming-p-pin", shard, 0, ReadLimits::default()).await.unwrap();
    assert_eq!(&stored[0].value[..], data.as_bytes());
    assert_eq!(stored[0].key.as_deref(), Some(&b"partition-1"[..]));

    // The integration's PutRecords shape, and Kinesis' own.
    let classic = json!({"records":[{"data":{"n":1},"partition-key":"a"},{"data":{"n":2},"partition-key":"b"},{"data":{"n":3},"partition-key":"a"}]});
    let (s, _, v) = api.call("PUT", "/streams/streaming-p-pin/records", &[], classic.to_string()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["FailedRecordCount"], 0);
    let recs = v["Records"].as_array().unwrap();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0]["ShardId"], partitioner::shard_id(partitioner::kinesis_shard("a", 4)));
    let (p0, o0) = partitioner::parse_sequence_number(recs[0]["SequenceNumber"].as_str().unwrap()).unwrap();
    let (p2, o2) = partitioner::parse_sequence_number(recs[2]["SequenceNumber"].as_str().unwrap()).unwrap();
    assert_eq!((p0, o0 + 1), (p2, o2), "same key, same shard, next offset");
    let aws = json!({"Records":[{"Data":{"n":4},"PartitionKey":"z"}]});
    let (s, _, v) = api.call("PUT", "/streams/streaming-p-pin/records", &[], aws.to_string()).await;
    assert_eq!((s, v["FailedRecordCount"].as_u64()), (StatusCode::OK, Some(0)));

    // Errors.
    let put = |b: String| api.call("PUT", "/streams/streaming-p-pin/record", &[], b);
    assert_kinesis_error(put(r#"{"Data":{"a":1}}"#.into()).await, 400, "ValidationException");
    assert_kinesis_error(put(r#"{"PartitionKey":"k"}"#.into()).await, 400, "ValidationException");
    assert_kinesis_error(put(r#"{"Data":null,"PartitionKey":"k"}"#.into()).await, 400, "ValidationException");
    assert_kinesis_error(
        put(format!(r#"{{"Data":1,"PartitionKey":"{}"}}"#, "k".repeat(257))).await,
        400,
        "ValidationException",
    );
    assert_kinesis_error(put(r#"{"Data":1,"PartitionKey":""}"#.into()).await, 400, "ValidationException");
    assert_kinesis_error(put("not json".into()).await, 400, "SerializationException");
    assert_kinesis_error(put(r#"{"Data":1,"PartitionKey":5}"#.into()).await, 400, "ValidationException");
    let many: Vec<Value> = (0..501).map(|i| json!({"data": i, "partition-key": "k"})).collect();
    assert_kinesis_error(
        api.call("PUT", "/streams/streaming-p-pin/records", &[], json!({"records": many}).to_string()).await,
        400,
        "ValidationException",
    );
    assert_kinesis_error(
        api.call("PUT", "/streams/streaming-p-pin/records", &[], r#"{"records":[]}"#).await,
        400,
        "ValidationException",
    );
    assert_kinesis_error(
        api.call("PUT", "/streams/streaming-p-pin/records", &[], r#"{"records":[{"data":1}]}"#).await,
        400,
        "ValidationException",
    );
    assert_kinesis_error(
        api.call("PUT", "/streams/..%2Fx/record", &[], r#"{"Data":1,"PartitionKey":"k"}"#).await,
        400,
        "ValidationException",
    );
    let total: u64 = api.log.offsets("streaming-p-pin").await.unwrap().iter().map(|o| o.end).sum();
    assert_eq!(total, 5, "failed requests wrote nothing");
}

#[tokio::test]
async fn unknown_streams_need_auto_create() {
    let api = Api::with(ApiConfig { auto_create_topics: false, ..ApiConfig::default() });
    let body = r#"{"Data":{"a":1},"PartitionKey":"k"}"#;
    assert_kinesis_error(api.call("PUT", "/streams/nope/record", &[], body).await, 400, "ResourceNotFoundException");
    let api = Api::new();
    let (s, _, _) = api.call("PUT", "/streams/fresh/record", &[], body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(api.log.topic("fresh").await.unwrap().kind, TopicKind::Stream);
}

#[tokio::test]
async fn base_path_and_api_keys() {
    let api = Api::with(ApiConfig { base_path: "/prod".into(), api_keys: "k1,k2".into(), ..ApiConfig::default() });
    let body = r#"{"records":[{"value":1}]}"#;
    let api = &api;
    let post = |uri: &'static str, key: Option<&'static str>| {
        let mut h = vec![("content-type", JSON_V2)];
        if let Some(k) = key {
            h.push(("x-api-key", k));
        }
        async move { api.call("POST", uri, &h, body).await }
    };
    let (s, _, v) = post("/prod/topics/t", None).await;
    assert_kafka_error((s, v), 403, 40301);
    let (s, _, v) = post("/prod/topics/t", Some("wrong")).await;
    assert_kafka_error((s, v), 403, 40301);
    assert_eq!(post("/prod/topics/t", Some("k2")).await.0, StatusCode::OK);
    let (s, _, v) = post("/topics/t", Some("k1")).await;
    assert_kafka_error((s, v), 404, 404);
    assert_kinesis_error(api.call("GET", "/prod/streams", &[], "").await, 403, "AccessDeniedException");
    assert_eq!(api.call("GET", "/prod/streams", &[("x-api-key", "k1")], "").await.0, StatusCode::OK);
    // Health needs no key; metrics (they name every topic) do, unless configured public.
    let (s, _, v) = api.call("GET", "/prod/healthz", &[], "").await;
    assert_eq!((s, v), (StatusCode::OK, json!({"status":"ok"})));
    let (s, _, v) = api.call("GET", "/prod/metrics", &[], "").await;
    assert_kafka_error((s, v), 403, 40301);
    assert_eq!(api.call("GET", "/prod/metrics", &[("x-api-key", "k2")], "").await.0, StatusCode::OK);
    assert_eq!(api.values("t", 0).await, ["1"]);
    let public = Api::with(ApiConfig { api_keys: "k1".into(), metrics_public: true, ..ApiConfig::default() });
    assert_eq!(public.call("GET", "/metrics", &[], "").await.0, StatusCode::OK);
    let (s, _, v) = public.call("GET", "/topics", &[], "").await;
    assert_kafka_error((s, v), 403, 40301);
}

#[test]
fn api_keys_are_compared_whole() {
    let keys = vec!["k1".to_owned(), "secret-key".to_owned()];
    assert!(crate::key_matches(&keys, b"secret-key"));
    assert!(crate::key_matches(&keys, b"k1"));
    for wrong in [&b"secret-ke"[..], b"secret-keyX", b"", b"k", b"K1"] {
        assert!(!crate::key_matches(&keys, wrong), "{wrong:?}");
    }
}

/// Regression: stream routes acted on topics (`DELETE /streams/<topic>` deleted a REST-Proxy
/// topic), and a produce to a partition that does not exist created the topic before failing.
#[tokio::test]
async fn stream_routes_act_only_on_streams_and_topic_routes_only_on_topics() {
    let api = Api::new();
    assert_eq!(api.produce("t1", JSON_V2, r#"{"records":[{"value":{"a":1}}]}"#).await.0, StatusCode::OK);
    let put = r#"{"StreamName":"s1","Data":{"b":2},"PartitionKey":"k"}"#;
    assert_eq!(api.call("PUT", "/streams/s1/record", &[], put).await.0, StatusCode::OK);

    // A topic is not a stream.
    assert_kinesis_error(api.call("DELETE", "/streams/t1", &[], "").await, 400, "ResourceNotFoundException");
    assert_kinesis_error(api.call("GET", "/streams/t1", &[], "").await, 400, "ResourceNotFoundException");
    let put_t1 = r#"{"StreamName":"t1","Data":{"x":1},"PartitionKey":"k"}"#;
    assert_kinesis_error(api.call("PUT", "/streams/t1/record", &[], put_t1).await, 400, "ResourceNotFoundException");
    let put_many = r#"{"records":[{"data":{"x":1},"partition-key":"k"}]}"#;
    assert_kinesis_error(api.call("PUT", "/streams/t1/records", &[], put_many).await, 400, "ResourceNotFoundException");
    assert_eq!(api.values("t1", 0).await, [r#"{"a":1}"#]);

    // A stream is not a topic.
    for (method, uri) in [("GET", "/topics/s1"), ("GET", "/topics/s1/partitions"), ("GET", "/topics/s1/partitions/0")] {
        let (s, _, v) = api.call(method, uri, &[], "").await;
        assert_kafka_error((s, v), 404, 40401);
    }
    assert_kafka_error(api.produce("s1", JSON_V2, r#"{"records":[{"value":{"x":1}}]}"#).await, 404, 40401);
    assert_eq!(api.values("s1", 0).await, [r#"{"b":2}"#]);

    // A failed produce creates nothing.
    let (s, _, v) = api
        .call("POST", "/topics/fresh/partitions/3", &[("content-type", JSON_V2)], r#"{"records":[{"value":1}]}"#)
        .await;
    assert_kafka_error((s, v), 404, 40402);
    let (s, v) = api.produce("fresh2", JSON_V2, r#"{"records":[{"value":1,"partition":5}]}"#).await;
    assert_kafka_error((s, v), 404, 40402);
    let (s, v) = api.produce("fresh3", JSON_V2, r#"{"records":[{"value":null}]}"#).await;
    assert_eq!(s.as_u16(), 422, "{v}");
    let names = api.topic_names().await;
    assert!(!names.iter().any(|n| n.starts_with("fresh")), "{names:?}");
    assert!(names.contains(&"t1".to_owned()) && names.contains(&"s1".to_owned()), "{names:?}");
}

#[tokio::test]
async fn metrics_count_requests_records_and_end_offsets() {
    let api = Api::new();
    for _ in 0..3 {
        api.produce("pinterest.geo", JSON_V2, r#"{"records":[{"value":{"ind":1}},{"value":{"ind":2}}]}"#).await;
    }
    api.produce("pinterest.geo", "text/plain", "x").await;
    api.call("PUT", "/streams/s1/record", &[], r#"{"Data":{"a":1},"PartitionKey":"k"}"#).await;
    let (s, ct, v) = api.call("GET", "/metrics", &[], "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(ct.starts_with("application/openmetrics-text"));
    let text = v.as_str().unwrap();
    let has = |line: &str| assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    has(r#"pinpipe_api_requests_total{route="/topics/{topic}",method="POST",status="200"} 3"#);
    has(r#"pinpipe_api_requests_total{route="/topics/{topic}",method="POST",status="415"} 1"#);
    has(r#"pinpipe_api_requests_total{route="/streams/{stream}/record",method="PUT",status="200"} 1"#);
    has(r#"pinpipe_log_appended_records_total{topic="pinterest.geo"} 6"#);
    has(r#"pinpipe_log_appended_bytes_total{topic="pinterest.geo"} 54"#);
    has(r#"pinpipe_log_end_offset{topic="pinterest.geo",partition="0"} 6"#);
    has(r#"pinpipe_log_end_offset{topic="s1",partition="0"} 1"#);
    assert!(text.contains(r#"pinpipe_api_request_duration_seconds_count{route="/topics/{topic}"} 4"#), "{text}");
}

#[tokio::test]
async fn over_long_targets_and_headers_get_the_contract_body() {
    let api = Api::new();
    let long = format!("/topics/{}", "a".repeat(crate::MAX_URI_BYTES));
    let (s, _, v) = api.call("GET", &long, &[], "").await;
    assert_kafka_error((s, v), 414, 414);
    let (s, ct, v) = api.call("GET", &format!("/streams/{}", "a".repeat(crate::MAX_URI_BYTES)), &[], "").await;
    assert_kinesis_error((s, ct, v), 414, "ValidationException");
    let big = "x".repeat(crate::MAX_HEADER_BYTES);
    let (s, _, v) = api.call("GET", "/topics", &[("x-padding", big.as_str())], "").await;
    assert_kafka_error((s, v), 431, 431);
}

/// Regression: concurrent first produces to a new topic staged its files in the same place, and
/// one creation could undo the other's.
#[tokio::test]
async fn concurrent_first_produces_create_the_topic_once() {
    let api = Api::new();
    let body = r#"{"records":[{"value":{"a":1}}]}"#;
    let calls = (0..24).map(|_| api.produce("fresh.topic", JSON_V2, body));
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(|(s, _)| *s == StatusCode::OK), "{results:?}");
    assert_eq!(api.values("fresh.topic", 0).await.len(), 24);
}

#[tokio::test]
async fn the_console_serves_its_page_and_json_behind_the_api_keys() {
    let api = Api::with(ApiConfig { base_path: "/prod".into(), api_keys: "k1".into(), ..ApiConfig::default() });
    let key = [("x-api-key", "k1")];
    let body = r#"{"records":[{"value":{"a":1}},{"value":{"a":2}},{"value":{"a":3}}]}"#;
    let (s, _, _) = api.call("POST", "/prod/topics/t", &[("content-type", JSON_V2), key[0]], body).await;
    assert_eq!(s, StatusCode::OK);
    // Without a key: refused, with the contract's body; a wrong `?key=` too.
    for uri in ["/prod/ui", "/prod/api/v1/overview", "/prod/api/v1/records/t", "/prod/api/v1/batch/report"] {
        let (s, _, v) = api.call("GET", uri, &[], "").await;
        assert_kafka_error((s, v), 403, 40301);
        let (s, _, v) = api.call("GET", &format!("{uri}?key=k2"), &[], "").await;
        assert_kafka_error((s, v), 403, 40301);
    }
    // `?key=` opens the console's routes only (a browser cannot set a header on a page).
    let (s, _, v) = api.call("GET", "/prod/topics?key=k1", &[], "").await;
    assert_kafka_error((s, v), 403, 40301);
    let (s, ct, page) = api.call("GET", "/prod/ui?key=k1", &[], "").await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "text/html; charset=utf-8"));
    let page = page.as_str().unwrap();
    assert!(page.contains("<title>pinpipe console</title>"));
    // Nothing is fetched from elsewhere: no absolute URL but the SVG namespace.
    let absolute: Vec<&str> =
        page.match_indices("://").map(|(i, _)| &page[i.saturating_sub(5)..(i + 25).min(page.len())]).collect();
    assert!(absolute.iter().all(|a| a.contains("www.w3.org/2000/svg")), "{absolute:?}");
    let mut req = axum::http::Request::builder().uri("/prod/ui").header("x-api-key", "k1");
    req = req.method("GET");
    let resp = api.router.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    // The overview: the topic and its records; no other stage runs in this process.
    let (s, _, v) = api.call("GET", "/prod/api/v1/overview", &key, "").await;
    assert_eq!(s, StatusCode::OK);
    let t = v["log"]["names"].as_array().unwrap().iter().find(|n| n["name"] == "t").unwrap().clone();
    assert_eq!((t["kind"].as_str(), t["records"].as_u64(), t["appended"].as_u64()), (Some("topic"), Some(3), Some(3)));
    assert!(v.get("sink").is_none() && v["time_ms"].as_i64().unwrap() > 0, "{v}");
    // The newest records, newest first, at most `limit` per partition.
    let (s, _, v) = api.call("GET", "/prod/api/v1/records/t?limit=2", &key, "").await;
    assert_eq!(s, StatusCode::OK);
    let values: Vec<&str> = v["records"].as_array().unwrap().iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert_eq!(values.len(), 2);
    assert!(values.iter().all(|v| *v == r#"{"a":2}"# || *v == r#"{"a":3}"#), "{values:?}");
    // Bad and unknown names: the contract's errors.
    let (s, _, v) = api.call("GET", "/prod/api/v1/records/nope", &key, "").await;
    assert_kafka_error((s, v), 404, 40401);
    let (s, _, v) = api.call("GET", "/prod/api/v1/records/..", &key, "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _, v) = api.call("GET", "/prod/api/v1/batch/report", &key, "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(v.as_str().unwrap().contains("No batch run yet"));
}
