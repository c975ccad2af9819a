//! Text helpers shared by every stage's errors and logs (a leaf: imports nothing from the crate).

/// Seconds rounded to the millisecond, as logs and the manifest show durations: `0.013`, not
/// `0.012847492000000002`.
pub fn millis(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// DataFusion errors often span lines (schema listings, backtraces); logs and exit messages
/// must stay one line per error.
/// An object store's failure comes out in plain words (see [`plain_store_error`]); the raw
/// response is logged at debug level (`-v`).
pub fn one_line(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(plain) = plain_store_error(&text) {
        tracing::debug!(response = %text, "object store error");
        return plain;
    }
    if let Some(plain) = plain_cluster_error(&text) {
        tracing::debug!(response = %text, "cluster error");
        return plain;
    }
    text
}

/// `message` on one line whatever it quotes: a name from a job file (a TOML multi-line string
/// can hold newlines) would otherwise split the exit message that cron and Airflow show as the
/// run's last line. Control characters are written as escapes (`\n`); other text is unchanged.
pub fn single_line(message: &str) -> String {
    message.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// Words in a gRPC failure that mean the connection itself broke (the process at the other end
/// died or the network dropped), not that the request failed.
const CONNECTION_LOST: &[&str] = &["h2 protocol error", "transport error", "Connection refused", "connection reset", "broken pipe"];

/// A gRPC call to the Ballista scheduler that lost its connection (tonic's `code: 'Unknown
/// error', message: "h2 protocol error: …", source: hyper::Error(…)`) as
/// `lost the connection to the Ballista scheduler (h2 protocol error: …)`. `None` for anything
/// else, which is shown as it is.
pub fn plain_cluster_error(text: &str) -> Option<String> {
    // Ballista's client reaching a process that has gone: `GrpcConnectionError("Error connecting
    // to Ballista scheduler or executor at URL: tonic::transport::Error(… Connection refused …)")`
    // (e.g. fetching a result from an executor killed after its job finished).
    const CONNECTING: &str = "Error connecting to Ballista scheduler or executor at ";
    if let Some(at) = text.find(CONNECTING) {
        let rest = &text[at + CONNECTING.len()..];
        let url = &rest[..rest.find(": ").unwrap_or(rest.len())];
        let reason = CONNECTION_LOST.iter().find(|lost| rest.contains(*lost)).map_or("cannot connect", |lost| lost);
        return Some(format!("lost the connection to the Ballista cluster at {url} ({})", reason.to_lowercase()));
    }
    let start = text.find("message: \"")? + "message: \"".len();
    let message = &text[start..start + text[start..].find('"')?];
    CONNECTION_LOST
        .iter()
        .any(|lost| text.contains(lost))
        .then(|| format!("lost the connection to the Ballista scheduler ({message})"))
}

/// What an object store's error codes and HTTP statuses mean to a user, first match wins
/// (S3 and S3-compatible servers, then Azure and GCS wording).
const STORE_CAUSES: &[(&str, &str)] = &[
    ("NoSuchBucket", "no such bucket"),
    ("The specified bucket does not exist", "no such bucket"),
    ("ContainerNotFound", "no such container"),
    ("InvalidAccessKeyId", "invalid access key"),
    ("SignatureDoesNotMatch", "invalid key or signature"),
    ("AuthenticationFailed", "invalid key or signature"),
    ("ExpiredToken", "expired token"),
    ("TokenRefreshRequired", "expired token"),
    ("AccessDenied", "access denied"),
    ("AuthorizationFailure", "access denied"),
    ("AuthorizationPermissionMismatch", "access denied"),
    ("403 Forbidden", "access denied"),
    ("SlowDown", "throttled"),
    ("429 Too Many Requests", "throttled"),
    ("503 Service Unavailable", "service unavailable"),
    ("timed out", "timed out"),
    ("Connection refused", "connection refused"),
];

/// An object store's HTTP failure (`Error performing PUT http://… in 2ms - Server returned
/// non-2xx status code: 404 Not Found: <?xml …`) as the cause and the request it failed on,
/// e.g. `no such bucket (PUT http://host/bucket/key)`, with the retries when there were any.
/// The request's query string is dropped: presigned credentials would live there. `None`
/// for anything else, which is shown as it is.
pub fn plain_store_error(text: &str) -> Option<String> {
    // The innermost "Error performing" names the HTTP request ("… list request: Error
    // performing GET http://…").
    let at = text.rfind("Error performing ")?;
    let cause = STORE_CAUSES.iter().find(|(code, _)| text.contains(code)).map(|(_, plain)| *plain)?;
    let mut words = text[at + "Error performing ".len()..].split(' ');
    let method = words.next().unwrap_or_default();
    let url = words.next().unwrap_or_default().split('?').next().unwrap_or_default();
    let retries = text
        .find(" retries")
        .and_then(|end| text[..end].rsplit(' ').next())
        .filter(|n| n.parse::<u32>().is_ok_and(|n| n > 0))
        .map(|n| format!(", after {n} retries"))
        .unwrap_or_default();
    Some(format!("{cause} ({method} {url}{retries})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_store_failures_read_as_their_cause_and_request() {
        let raw = "Generic S3 error: Error performing PUT http://127.0.0.1:9/no-such-bucket/x/_staging/a?X-Amz-Signature=s3cr3t \
                   in 2.4ms - Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?><Error>\
                   <Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        let plain = one_line(&raw);
        assert_eq!(plain, "no such bucket (PUT http://127.0.0.1:9/no-such-bucket/x/_staging/a)");
        let throttled = "Error performing GET http://h/b/k in 9s, after 10 retries, max_retries: 10 - HTTP error: 503 Service Unavailable: <Code>SlowDown</Code>";
        assert_eq!(one_line(&throttled), "throttled (GET http://h/b/k, after 10 retries)");
        let listing = "Object Store error: Generic S3 error: Error performing list request: Error performing GET http://h/raw?list-type=2 in 7ms - Server returned non-2xx status code: 403 Forbidden: <Code>SignatureDoesNotMatch</Code>";
        assert_eq!(one_line(&listing), "invalid key or signature (GET http://h/raw)");
        let other = "Parquet error: not a parquet file";
        assert_eq!(one_line(&other), other);
    }

    #[test]
    fn quoted_newlines_and_controls_stay_on_the_line() {
        let message = "view 'v': no column 'a\nb\r\tc\u{7}' (columns: ü, 日本)";
        assert_eq!(single_line(message), "view 'v': no column 'a\\nb\\r\\tc\\u{7}' (columns: ü, 日本)");
        assert_eq!(single_line("plain"), "plain");
    }

    #[test]
    fn a_lost_scheduler_reads_as_a_lost_connection() {
        let raw = "Execution error: code: 'Unknown error', message: \"h2 protocol error: error reading a body from connection\", \
                   source: hyper::Error(Body, Error { kind: Io(Custom { kind: BrokenPipe, error: \"stream closed because of a broken pipe\" }) })";
        assert_eq!(one_line(&raw), "lost the connection to the Ballista scheduler (h2 protocol error: error reading a body from connection)");
        let executor = "Execution error: GrpcConnectionError(\"Error connecting to Ballista scheduler or executor at http://127.0.0.1:26088: \
                        tonic::transport::Error(Transport, ConnectError(ConnectError(\\\"tcp connect error\\\", 127.0.0.1:26088, Os { code: 111, \
                        kind: ConnectionRefused, message: \\\"Connection refused\\\" })))\")";
        assert_eq!(one_line(&executor), "lost the connection to the Ballista cluster at http://127.0.0.1:26088 (connection refused)");
        let failed_job = "Execution error: code: 'Internal error', message: \"Job failed: task 3 failed 4 times\"";
        assert_eq!(one_line(&failed_job), failed_job);
    }
}
