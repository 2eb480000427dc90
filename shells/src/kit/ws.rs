//! WebSocket streams (Buncast subscriptions, Bundoc's realtime queries):
//! one loop that sends the stream's frames as they come (those ready
//! together in one flush), pings an idle connection so proxies keep it
//! open, answers what the client sends, and closes with a code that says
//! why the server ended the stream.

use std::future::Future;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{FutureExt, SinkExt, Stream, StreamExt};

/// Ready frames sent before one flush.
const BATCH: usize = 64;

/// One frame of a WebSocket stream.
pub trait WsFrame {
    fn message(&self) -> Message;
    /// For the stream's last frame: why it ends (`shutdown`, `lagged`,
    /// `resync`, `revoked`, `error`), sent as the close frame's reason.
    fn closing(&self) -> Option<&str>;
}

/// The close code for why the server ended a stream.
pub fn close_code(reason: &str) -> u16 {
    match reason {
        "shutdown" => 1001, // going away
        "lagged" => 4001,
        "resync" => 4002,
        "revoked" => 4003,
        _ => 1011, // the server hit an error
    }
}

/// Runs `socket` until the stream, the client or the connection ends:
/// `opening` first, then `frames`; every text or binary message the client
/// sends goes to `on_message`, whose answer (if any) is sent back.
pub async fn pump<S, F, H, Fut>(
    socket: WebSocket,
    opening: Option<String>,
    mut frames: S,
    keepalive: Duration,
    mut on_message: H,
) where
    S: Stream<Item = F> + Unpin,
    F: WsFrame,
    H: FnMut(Message) -> Fut,
    Fut: Future<Output = Option<String>>,
{
    let (mut sink, mut incoming) = socket.split();
    if let Some(opening) = opening
        && sink.send(Message::Text(opening.into())).await.is_err()
    {
        return;
    }
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            frame = frames.next() => {
                let Some(mut frame) = frame else {
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                };
                let mut sent = 0;
                let reason = loop {
                    if sink.feed(frame.message()).await.is_err() {
                        return;
                    }
                    sent += 1;
                    if let Some(reason) = frame.closing() {
                        break Some(reason.to_string());
                    }
                    if sent == BATCH {
                        break None;
                    }
                    match frames.next().now_or_never() {
                        Some(Some(next)) => frame = next,
                        _ => break None,
                    }
                };
                if sink.flush().await.is_err() {
                    return;
                }
                if let Some(reason) = reason {
                    let close = CloseFrame { code: close_code(&reason), reason: reason.into() };
                    let _ = sink.send(Message::Close(Some(close))).await;
                    return;
                }
            }
            message = incoming.next() => match message {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    if let Some(reply) = on_message(message).await
                        && sink.send(Message::Text(reply.into())).await.is_err()
                    {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {} // pings and pongs are answered by the library
            }
        }
    }
}
