//! Buncast over WebSocket: subscribe, publish frames, errors, close reasons.

use std::time::Duration;

use bunbase_tests::harness::{self, ALPHA, ALPHA_READER, BETA, Options};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{WAIT, publish, unique};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(
    base: &str,
    token: &str,
    project: &str,
    filter: &str,
    after: Option<u64>,
) -> Result<Socket, u16> {
    let ws_base = base.replacen("http://", "ws://", 1);
    let query = after.map(|a| format!("?after={a}")).unwrap_or_default();
    let mut request = format!("{ws_base}/events/v1/projects/{project}/topics/{filter}/ws{query}")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("connect: {e}"),
    }
}

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("no WebSocket message in time")
            .expect("socket ended")
            .expect("socket error");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

#[tokio::test]
async fn subscribe_and_publish_over_one_socket() {
    let server = harness::shared();
    let topic = unique("ws");
    let mut socket = connect(&server.url, ALPHA, "alpha", &format!("{topic}.*"), None)
        .await
        .unwrap();
    let opening = next_json(&mut socket).await;
    assert_eq!(opening["type"], "subscribed");
    let position = opening["position"].as_u64().unwrap();

    let http_seq = publish(
        &server.url,
        ALPHA,
        "alpha",
        &format!("{topic}.a"),
        json!({"via": "http"}),
    )
    .await;
    let event = next_json(&mut socket).await;
    assert_eq!(event["type"], "event");
    assert_eq!(event["seq"], http_seq);
    assert!(http_seq > position);
    assert_eq!(event["data"], json!({"via": "http"}));

    let frame =
        json!({"type": "publish", "topic": format!("{topic}.b"), "data": [1, 2], "ref": "r1"});
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    // The acknowledgement and the event itself both arrive, in either order.
    let (mut ack, mut echoed) = (None, None);
    for _ in 0..2 {
        let message = next_json(&mut socket).await;
        match message["type"].as_str() {
            Some("published") => ack = Some(message),
            Some("event") => echoed = Some(message),
            _ => panic!("unexpected {message}"),
        }
    }
    let (ack, echoed) = (ack.unwrap(), echoed.unwrap());
    assert_eq!(ack["ref"], "r1");
    assert_eq!(ack["seq"], echoed["seq"]);
    assert_eq!(echoed["data"], json!([1, 2]));
}

#[tokio::test]
async fn bad_frames_get_errors_and_the_socket_stays_open() {
    let server = harness::shared();
    let topic = unique("wsbad");
    let mut socket = connect(&server.url, ALPHA, "alpha", &topic, None)
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["type"], "subscribed");
    let cases = [
        ("not json", "invalid_input"),
        (r#"{"type":"dance"}"#, "invalid_input"),
        (r#"{"type":"publish","data":1}"#, "invalid_input"),
        (
            r#"{"type":"publish","topic":"t","data":1,"extra":true}"#,
            "invalid_input",
        ),
        (
            r#"{"type":"publish","topic":"a..b","data":1}"#,
            "invalid_input",
        ),
        (
            r#"{"type":"publish","topic":"a.*","data":1}"#,
            "invalid_input",
        ),
    ];
    for (frame, code) in cases {
        socket.send(Message::Text(frame.into())).await.unwrap();
        let reply = next_json(&mut socket).await;
        assert_eq!(reply["type"], "error", "{frame}");
        assert_eq!(reply["error"]["code"], code, "{frame}: {reply}");
    }
    socket
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut socket).await["error"]["code"],
        "invalid_input"
    );
    // Still subscribed.
    let seq = publish(&server.url, ALPHA, "alpha", &topic, json!("still here")).await;
    assert_eq!(next_json(&mut socket).await["seq"], seq);

    // A read-only credential may subscribe but not publish.
    let mut reader = connect(&server.url, ALPHA_READER, "alpha", &topic, None)
        .await
        .unwrap();
    assert_eq!(next_json(&mut reader).await["type"], "subscribed");
    reader
        .send(Message::Text(
            r#"{"type":"publish","topic":"t","data":1,"ref":7}"#.into(),
        ))
        .await
        .unwrap();
    let reply = next_json(&mut reader).await;
    assert_eq!(reply["error"]["code"], "permission_denied");
    assert_eq!(reply["ref"], 7);
}

#[tokio::test]
async fn credentials_are_checked_before_the_upgrade() {
    let server = harness::shared();
    assert_eq!(
        connect(&server.url, ALPHA, "beta", "t", None).await.err(),
        Some(403)
    );
    assert_eq!(
        connect(
            &server.url,
            "wrong-token-000000000000000",
            "alpha",
            "t",
            None
        )
        .await
        .err(),
        Some(401)
    );
    assert_eq!(
        connect(&server.url, BETA, "beta", "a..b", None).await.err(),
        Some(400)
    );
}

#[tokio::test]
async fn resumes_with_after_and_closes_on_shutdown() {
    let server = harness::start(Options::default()).await;
    let url = server.url();
    let first = publish(&url, ALPHA, "alpha", "t", json!(1)).await;
    let second = publish(&url, ALPHA, "alpha", "t", json!(2)).await;
    let mut socket = connect(&url, ALPHA, "alpha", "t", Some(first))
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["type"], "subscribed");
    assert_eq!(next_json(&mut socket).await["seq"], second);

    server.shutdown.trigger();
    let closed = next_json(&mut socket).await;
    assert_eq!(closed["type"], "closed");
    assert_eq!(closed["reason"], "shutdown");
    let close = tokio::time::timeout(WAIT, socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match close {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a close frame, got {other:?}"),
    }
    let result = tokio::time::timeout(Duration::from_secs(15), server.handle).await;
    assert!(
        matches!(result, Ok(Ok(Ok(())))),
        "server stops cleanly: {result:?}"
    );
}
