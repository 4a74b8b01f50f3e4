//! Request bodies: the size limit (413 with the family's error body, never a bare text) and the
//! content types of the REST Proxy.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;

/// How a produce request embeds its keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedded {
    /// `application/vnd.kafka.json.v2+json` (also `vnd.kafka.v2+json` and `application/json`):
    /// keys and values are JSON, stored as their JSON text.
    Json,
    /// `application/vnd.kafka.binary.v2+json`: keys and values are base64 strings.
    Binary,
}

/// The embedded format of a produce request, or why its content type is not accepted.
pub fn produce_format(headers: &HeaderMap) -> Result<Embedded, String> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Err("Content-Type is missing: use application/vnd.kafka.json.v2+json".into());
    };
    let ct = ct.to_str().unwrap_or_default();
    let mime = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/vnd.kafka.json.v2+json" | "application/vnd.kafka.v2+json" | "application/json" => {
            Ok(Embedded::Json)
        }
        "application/vnd.kafka.binary.v2+json" => Ok(Embedded::Binary),
        _ => Err(format!(
            "Content-Type {ct:?} is not supported: use application/vnd.kafka.json.v2+json or application/vnd.kafka.binary.v2+json"
        )),
    }
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Larger than the limit.
    TooLarge(usize),
    /// The connection failed while reading.
    Read(String),
    /// The body did not arrive in time.
    Timeout(std::time::Duration),
}

/// Most bytes of an over-large body read and thrown away before the 413 is sent. A client that
/// writes its whole body before reading (Python's urllib and requests do) then reads the 413
/// instead of failing with a broken pipe; past this much the connection is closed.
pub const MAX_DRAIN_BYTES: usize = 64 << 20;

/// The `Content-Length` of a request, if it has a valid one.
pub fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok())
}

/// Reads the whole body within `timeout`, refusing more than `limit` bytes (checked against
/// `Content-Length` first, then while reading). A refused body is drained (up to
/// [`MAX_DRAIN_BYTES`], within the same timeout) unless the client sent `Expect: 100-continue`,
/// which means it waits for the answer before sending the body; the 413 then closes the
/// connection.
pub async fn read(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, BodyError> {
    use http_body_util::BodyExt;

    let deadline = tokio::time::Instant::now() + timeout;
    let waits_for_answer =
        headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut body = body;
    let too_large = |body: Body| async move {
        if !waits_for_answer {
            drain(body, deadline).await;
        }
        Err(BodyError::TooLarge(limit))
    };
    let declared = declared_length(headers);
    if declared.is_some_and(|n| n > limit) {
        return too_large(body).await;
    }
    // The common case, a body in one frame, is returned without a copy.
    let mut first: Option<Bytes> = None;
    let mut rest: Option<bytes::BytesMut> = None;
    let mut total = 0usize;
    loop {
        // A frame that is there already needs no timer (the usual small body, read with its
        // headers); only a body still arriving is waited for against the deadline.
        use futures_util::FutureExt;
        let ready = body.frame().now_or_never();
        let next = match ready {
            Some(frame) => Ok(frame),
            None => tokio::time::timeout_at(deadline, body.frame()).await,
        };
        let frame = match next {
            Err(_) => return Err(BodyError::Timeout(timeout)),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(BodyError::Read(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        total += data.len();
        if total > limit {
            return too_large(body).await;
        }
        match (&mut first, &mut rest) {
            (None, _) => first = Some(data),
            (Some(f), None) => {
                let mut buf = bytes::BytesMut::with_capacity(declared.unwrap_or(0).max(f.len() + data.len()));
                buf.extend_from_slice(f);
                buf.extend_from_slice(&data);
                rest = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(&data),
        }
    }
    Ok(match (first, rest) {
        (_, Some(buf)) => buf.freeze(),
        (Some(f), None) => f,
        (None, None) => Bytes::new(),
    })
}

/// Reads and discards what is left of `body`, at most [`MAX_DRAIN_BYTES`] and until `deadline`.
async fn drain(mut body: Body, deadline: tokio::time::Instant) {
    use http_body_util::BodyExt;
    let mut drained = 0usize;
    while drained < MAX_DRAIN_BYTES {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => drained += frame.data_ref().map_or(0, Bytes::len),
            _ => return,
        }
    }
}

/// The JSON text of a value inside `body`, without copying when possible. A value with line
/// breaks (pretty-printed JSON) has them replaced by spaces: in JSON they can only be whitespace
/// between tokens, so the value is the same, now on one line, at any nesting depth.
pub fn json_value(body: &Bytes, raw: &serde_json::value::RawValue) -> Bytes {
    let text = raw.get().as_bytes();
    if memchr::memchr2(b'\n', b'\r', text).is_some() {
        Bytes::from(text.iter().map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }).collect::<Vec<u8>>())
    } else {
        body.slice_ref(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let h = |ct: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            produce_format(&m)
        };
        assert_eq!(h("application/vnd.kafka.json.v2+json"), Ok(Embedded::Json));
        assert_eq!(h("application/vnd.kafka.json.v2+json; charset=utf-8"), Ok(Embedded::Json));
        assert_eq!(h("application/json"), Ok(Embedded::Json));
        assert_eq!(h("application/vnd.kafka.v2+json"), Ok(Embedded::Json));
        assert_eq!(h("application/vnd.kafka.binary.v2+json"), Ok(Embedded::Binary));
        assert!(h("application/vnd.kafka.avro.v2+json").is_err());
        assert!(h("text/plain").is_err());
        assert!(produce_format(&HeaderMap::new()).is_err());
    }

    #[test]
    fn values_are_sliced_or_put_on_one_line() {
        let body = Bytes::from_static(b"{\"v\":{\"a\": 1},\"w\":{\n \"b\": 2\n}}");
        #[derive(serde::Deserialize)]
        struct B<'a> {
            #[serde(borrow)]
            v: &'a serde_json::value::RawValue,
            #[serde(borrow)]
            w: &'a serde_json::value::RawValue,
        }
        let b: B<'_> = serde_json::from_slice(&body).unwrap();
        assert_eq!(&json_value(&body, b.v)[..], b"{\"a\": 1}");
        assert_eq!(&json_value(&body, b.w)[..], b"{  \"b\": 2 }");
        // Deeper than serde_json builds values: still one line, the same JSON.
        let deep = format!("{{\"v\":{}\n{}}}", "[".repeat(200), "]".repeat(200));
        let body = Bytes::from(deep.clone());
        let b: std::collections::HashMap<&str, &serde_json::value::RawValue> = serde_json::from_slice(&body).unwrap();
        let v = json_value(&body, b["v"]);
        assert!(!v.contains(&b'\n'));
        assert_eq!(v.len(), 401);
    }
}
