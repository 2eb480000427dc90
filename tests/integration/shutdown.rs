//! Graceful shutdown and the request timeout, on real sockets.

use std::time::Duration;

use bunbase_shells::kit::ServerConfig;
use bunbase_tests::harness::{self, ALPHA, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::SseReader;

fn request_head(body_len: usize) -> String {
    format!(
        "POST /events/v1/projects/alpha/topics/inflight HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {ALPHA}\r\nContent-Type: application/json\r\nContent-Length: {body_len}\r\n\r\n"
    )
}

async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("response in time")
            .expect("read");
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n")
            && let Some(len) = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_string)
            })
            && body.len() >= len.trim().parse::<usize>().unwrap_or(usize::MAX)
        {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn in_flight_requests_finish_and_streams_close_cleanly() {
    let server = harness::start(Options::default()).await;
    let url = server.url();
    let mut sse = SseReader::open(&url, ALPHA, "alpha", "inflight", None).await;

    // A request whose body is only half sent when shutdown starts.
    let body = r#"{"data":{"finished":"after shutdown began"}}"#;
    let (first, rest) = body.split_at(10);
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(request_head(body.len()).as_bytes())
        .await
        .unwrap();
    stream.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    server.shutdown.trigger();
    // The open stream is told why it ends, then ends.
    let closed = sse.next().await.expect("a closed frame");
    assert_eq!(closed.event, "closed");
    assert!(closed.data.contains(r#""reason":"shutdown""#));
    assert!(sse.next().await.is_none());

    // The in-flight request still completes.
    stream.write_all(rest.as_bytes()).await.unwrap();
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    drop(stream);

    let stopped = tokio::time::timeout(Duration::from_secs(15), server.handle).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "server stopped cleanly: {stopped:?}"
    );
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn slow_requests_time_out_with_a_json_error() {
    let server = harness::start(Options {
        server: ServerConfig {
            request_timeout: Duration::from_millis(300),
            ..ServerConfig::default()
        },
        ..Options::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(request_head(100).as_bytes())
        .await
        .unwrap();
    stream.write_all(b"{\"data\":").await.unwrap();
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains(r#""code":"unavailable""#), "{response}");
}
