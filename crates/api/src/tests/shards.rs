//! Kinesis reads through the API: iterators of every type over records written by the put
//! routes, and the errors Kinesis answers.

use axum::http::StatusCode;
use base64::Engine;
use pinpipe_log::partitioner::{kinesis_shard, shard_id};
use serde_json::{Value, json};

use super::{Api, assert_kinesis_error};

impl Api {
    async fn iterator(&self, stream: &str, query: &str) -> String {
        let (s, _, v) = self.call("GET", &format!("/streams/{stream}/sharditerator?{query}"), &[], "").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["ShardIterator"].as_str().unwrap().to_owned()
    }

    async fn get_records(&self, stream: &str, iterator: &str, query: &str) -> Value {
        let (s, ct, v) =
            self.call("GET", &format!("/streams/{stream}/records?{query}"), &[("shard-iterator", iterator)], "").await;
        assert_eq!((s, ct.as_str()), (StatusCode::OK, "application/x-amz-json-1.1"), "{v}");
        v
    }
}

fn data(records: &Value) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    records["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| String::from_utf8(b64.decode(r["Data"].as_str().unwrap()).unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn records_put_through_the_api_are_read_back_with_every_iterator_type() {
    let api = Api::new();
    assert_eq!(api.call("POST", "/streams/s", &[], r#"{"ShardCount":2}"#).await.0, StatusCode::OK);
    // Keys that land on shard 0, one on shard 1.
    let on0: Vec<String> = (0..100).map(|i| format!("k{i}")).filter(|k| kinesis_shard(k, 2) == 0).take(4).collect();
    let on1 = (0..100).map(|i| format!("k{i}")).find(|k| kinesis_shard(k, 2) == 1).unwrap();
    let mut sequences = Vec::new();
    for (i, k) in on0.iter().enumerate() {
        let body = json!({"StreamName":"s","Data":{"n":i},"PartitionKey":k}).to_string();
        let (s, _, v) = api.call("PUT", "/streams/s/record", &[], body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["ShardId"], shard_id(0));
        sequences.push(v["SequenceNumber"].as_str().unwrap().to_owned());
    }
    let many = json!({"records":[{"data":{"other":true},"partition-key":on1}]}).to_string();
    let (s, _, put) = api.call("PUT", "/streams/s/records", &[], many).await;
    assert_eq!(s, StatusCode::OK, "{put}");

    // TRIM_HORIZON, the tutorial's default: every record of the shard, as put.
    let it = api.iterator("s", "shard-id=shardId-000000000000").await;
    let got = api.get_records("s", &it, "").await;
    assert_eq!(data(&got), [r#"{"n":0}"#, r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#]);
    let seqs: Vec<&str> =
        got["Records"].as_array().unwrap().iter().map(|r| r["SequenceNumber"].as_str().unwrap()).collect();
    assert_eq!(seqs, sequences);
    assert_eq!(got["Records"][1]["PartitionKey"], on0[1].as_str());
    assert!(got["Records"][0]["ApproximateArrivalTimestamp"].as_f64().unwrap() > 1.7e9);
    assert_eq!(got["MillisBehindLatest"], 0);
    // The next iterator stands at the end, then sees what comes.
    let next = got["NextShardIterator"].as_str().unwrap().to_owned();
    assert_eq!(data(&api.get_records("s", &next, "").await), Vec::<String>::new());
    let shard1 = api.iterator("s", "shard-id=shardId-000000000001&type=TRIM_HORIZON").await;
    let got1 = api.get_records("s", &shard1, "").await;
    assert_eq!(data(&got1), [r#"{"other":true}"#]);
    assert_eq!(got1["Records"][0]["SequenceNumber"], put["Records"][0]["SequenceNumber"]);

    // limit, and continuing from NextShardIterator.
    let first = api.get_records("s", &it, "limit=1").await;
    assert_eq!(data(&first).len(), 1);
    assert!(first["MillisBehindLatest"].as_u64().is_some());
    let rest = api.get_records("s", first["NextShardIterator"].as_str().unwrap(), "limit=2").await;
    assert_eq!(data(&rest), [r#"{"n":1}"#, r#"{"n":2}"#]);

    // AT / AFTER a sequence number.
    let at = api
        .iterator(
            "s",
            &format!("shard-id=shardId-000000000000&type=AT_SEQUENCE_NUMBER&starting-sequence-number={}", sequences[2]),
        )
        .await;
    assert_eq!(data(&api.get_records("s", &at, "").await), [r#"{"n":2}"#, r#"{"n":3}"#]);
    let after = api
        .iterator(
            "s",
            &format!(
                "shard-id=shardId-000000000000&type=AFTER_SEQUENCE_NUMBER&starting-sequence-number={}",
                sequences[2]
            ),
        )
        .await;
    assert_eq!(data(&api.get_records("s", &after, "").await), [r#"{"n":3}"#]);

    // LATEST: nothing of the past, then what is put after the iterator was taken.
    let latest = api.iterator("s", "shard-id=shardId-000000000000&type=LATEST").await;
    assert!(data(&api.get_records("s", &latest, "").await).is_empty());
    let body = json!({"Data":{"n":"new"},"PartitionKey":on0[0]}).to_string();
    api.call("PUT", "/streams/s/record", &[], body).await;
    assert_eq!(data(&api.get_records("s", &latest, "").await), [r#"{"n":"new"}"#]);
}

#[tokio::test]
async fn bad_iterator_requests_get_kinesis_errors() {
    let api = Api::new();
    api.call("POST", "/streams/s", &[], r#"{"ShardCount":1}"#).await;
    api.produce("topic1", super::JSON_V2, r#"{"records":[{"value":1}]}"#).await;
    let api = &api;
    let get = |uri: String| async move { api.call("GET", &uri, &[], "").await };
    assert_kinesis_error(get("/streams/s/sharditerator".into()).await, 400, "ValidationException");
    assert_kinesis_error(
        get("/streams/s/sharditerator?shard-id=shardId-000000000009".into()).await,
        400,
        "ResourceNotFoundException",
    );
    assert_kinesis_error(
        get("/streams/s/sharditerator?shard-id=nonsense".into()).await,
        400,
        "ResourceNotFoundException",
    );
    assert_kinesis_error(
        get("/streams/s/sharditerator?shard-id=shardId-000000000000&type=SOMETIME".into()).await,
        400,
        "ValidationException",
    );
    assert_kinesis_error(
        get("/streams/s/sharditerator?shard-id=shardId-000000000000&type=AT_SEQUENCE_NUMBER".into()).await,
        400,
        "InvalidArgumentException",
    );
    assert_kinesis_error(
        get("/streams/s/sharditerator?shard-id=shardId-000000000000&type=AT_SEQUENCE_NUMBER&starting-sequence-number=12x".into()).await,
        400,
        "InvalidArgumentException",
    );
    assert_kinesis_error(
        get("/streams/nope/sharditerator?shard-id=shardId-000000000000".into()).await,
        400,
        "ResourceNotFoundException",
    );
    assert_kinesis_error(
        get("/streams/topic1/sharditerator?shard-id=shardId-000000000000".into()).await,
        400,
        "ResourceNotFoundException",
    );
    // GetRecords.
    assert_kinesis_error(get("/streams/s/records".into()).await, 400, "ValidationException");
    let garbage = api.call("GET", "/streams/s/records", &[("shard-iterator", "not-an-iterator")], "").await;
    assert_kinesis_error(garbage, 400, "InvalidArgumentException");
    let it = api.iterator("s", "shard-id=shardId-000000000000").await;
    let bad_limit = api.call("GET", "/streams/s/records?limit=0", &[("shard-iterator", it.as_str())], "").await;
    assert_kinesis_error(bad_limit, 400, "ValidationException");
    api.call("POST", "/streams/t", &[], "").await;
    let other = api.call("GET", "/streams/t/records", &[("shard-iterator", it.as_str())], "").await;
    assert_kinesis_error(other, 400, "InvalidArgumentException");
    let expired = crate::shards::expired_iterator_for_tests("s", 0);
    let old = api.call("GET", "/streams/s/records", &[("shard-iterator", expired.as_str())], "").await;
    assert_kinesis_error(old, 400, "ExpiredIteratorException");
    // A deleted stream.
    api.call("DELETE", "/streams/s", &[], "").await;
    let gone = api.call("GET", "/streams/s/records", &[("shard-iterator", it.as_str())], "").await;
    assert_kinesis_error(gone, 400, "ResourceNotFoundException");
}
