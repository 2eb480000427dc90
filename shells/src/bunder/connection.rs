//! One client connection: read what arrived, answer every complete command
//! in it (pipelining), write the replies in one go. BLPOP/BRPOP on empty
//! lists wait here, between reads, without holding anything shared.

use std::sync::Arc;

use bunbase_core::kv::aof::{self, Aof};
use bunbase_core::kv::engine::{Activity, ClientHandle, Session, block_timeout};
use bunbase_core::kv::pubsub::{self, Inbox, Message, PubSub};
use bunbase_core::kv::resp::{self, Limits};
use bunbase_core::kv::snapshot::Snapshots;
use bunbase_core::kv::tx::{Transactions, Watch};
use bunbase_core::kv::{Engine, Reply};
use bytes::{Bytes, BytesMut};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Limits on a connection that has not authenticated yet.
const UNAUTHENTICATED: Limits = Limits {
    max_bulk_len: 16 * 1024,
    max_args: 10,
    max_inline_len: 16 * 1024,
};

/// What every connection shares.
pub struct Shared {
    pub engine: Arc<Engine>,
    pub limits: Limits,
    pub password: Option<Vec<u8>>,
    pub aof: Option<Arc<Aof>>,
    pub pubsub: Arc<PubSub>,
    pub tx: Arc<Transactions>,
    /// SAVE / BGSAVE / LASTSAVE.
    pub snapshots: Option<Arc<Snapshots>>,
}

/// A connection's MULTI queue and WATCHed keys (unwatched when it ends).
struct TxState {
    tx: Arc<Transactions>,
    queue: Option<Vec<Vec<Bytes>>>,
    watches: Vec<Watch>,
    /// A command was refused while queueing: EXEC will abort.
    dirty: bool,
}

impl TxState {
    fn reset(&mut self) {
        self.queue = None;
        self.dirty = false;
        self.tx.unwatch(&self.watches);
        self.watches.clear();
    }
}

impl Drop for TxState {
    fn drop(&mut self) {
        self.tx.unwatch(&self.watches);
    }
}

/// Runs one command (logging it, and noting writes and evictions for
/// WATCH); the caller holds the transaction gate.
fn run(shared: &Shared, session: &mut Session, args: &[Bytes]) -> Reply {
    let db = session.db;
    let reply = execute(shared, session, args);
    shared.tx.record(db, args, &reply, &session.evicted);
    reply
}

/// MULTI / EXEC / DISCARD / WATCH / UNWATCH, and queueing inside MULTI.
/// `None` when the command should simply run.
fn transaction_command(
    shared: &Shared,
    state: &mut TxState,
    session: &mut Session,
    args: &[Bytes],
) -> Option<Reply> {
    // Most commands are none of these and no MULTI is open: no allocation.
    if state.queue.is_none()
        && !["MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH"]
            .iter()
            .any(|w| is(&args[0], w))
    {
        return None;
    }
    let name = args[0].to_ascii_uppercase();
    let name = name.as_slice();
    if let Some(queue) = state.queue.as_mut()
        && !matches!(name, b"EXEC" | b"DISCARD" | b"MULTI" | b"WATCH" | b"QUIT")
    {
        if let Some(refused) = shared.engine.check_queued(args) {
            state.dirty = true;
            return Some(refused);
        }
        queue.push(args.to_vec());
        return Some(Reply::Simple("QUEUED"));
    }
    Some(match name {
        b"MULTI" if state.queue.is_some() => Reply::error("ERR MULTI calls can not be nested"),
        b"MULTI" => {
            state.queue = Some(Vec::new());
            Reply::ok()
        }
        b"WATCH" if state.queue.is_some() => Reply::error("ERR WATCH inside MULTI is not allowed"),
        b"WATCH" if args.len() < 2 => {
            Reply::error("ERR wrong number of arguments for 'watch' command")
        }
        b"WATCH" => {
            for key in &args[1..] {
                // A key that expires before EXEC counts as changed.
                let deadline = shared.engine.expires_at(session.db, key).unwrap_or(0);
                state
                    .watches
                    .push(shared.tx.watch_until(session.db, key.clone(), deadline));
            }
            Reply::ok()
        }
        b"UNWATCH" => {
            state.tx.unwatch(&state.watches);
            state.watches.clear();
            Reply::ok()
        }
        b"DISCARD" if state.queue.is_none() => Reply::error("ERR DISCARD without MULTI"),
        b"DISCARD" => {
            state.reset();
            Reply::ok()
        }
        b"EXEC" if state.queue.is_none() => Reply::error("ERR EXEC without MULTI"),
        b"EXEC" if state.dirty => {
            state.reset();
            Reply::error("EXECABORT Transaction discarded because of previous errors.")
        }
        b"EXEC" => {
            let queue = state.queue.take().unwrap_or_default();
            let reply = {
                let _alone = shared.tx.exclusive();
                if !shared.tx.unchanged(&state.watches) {
                    Reply::NilArray
                } else if let Some(refused) =
                    queue.iter().find_map(|c| shared.engine.check_queued(c))
                {
                    // Memory is checked once, for the whole transaction
                    // (Redis: EXEC answers the OOM error, nothing runs) …
                    refused
                } else {
                    // … and no command of it is refused half-way.
                    session.in_exec = true;
                    let replies = queue
                        .iter()
                        .map(|command| run(shared, session, command))
                        .collect();
                    session.in_exec = false;
                    Reply::Array(replies)
                }
            };
            state.reset();
            reply
        }
        _ => return None,
    })
}

/// A connection's subscriptions.
struct Subscriptions {
    inbox: Inbox,
    rx: tokio::sync::mpsc::Receiver<Message>,
    channels: std::collections::HashSet<Bytes>,
    patterns: std::collections::HashSet<Bytes>,
}

impl Subscriptions {
    fn count(&self) -> i64 {
        (self.channels.len() + self.patterns.len()) as i64
    }

    fn active(&self) -> bool {
        self.count() > 0
    }
}

fn push(kind: &'static str, name: Option<Bytes>, count: i64) -> Reply {
    Reply::Push(vec![
        Reply::bulk(kind),
        name.map_or(Reply::Nil, Reply::Bulk),
        Reply::Integer(count),
    ])
}

/// Pub/sub commands, which need the connection's own state. Appends the
/// replies to `output`; `None` if `args` is not one of them.
/// The commands [`pubsub_command`] answers.
const PUBSUB_WORDS: [&str; 5] = [
    "PUBLISH",
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
];

fn pubsub_command(
    shared: &Shared,
    subs: &mut Subscriptions,
    id: u64,
    args: &[Bytes],
    output: &mut BytesMut,
    resp3: bool,
) -> Option<()> {
    if !PUBSUB_WORDS.iter().any(|w| is(&args[0], w)) {
        return None;
    }
    let name = args[0].to_ascii_uppercase();
    let rest = &args[1..];
    match name.as_slice() {
        b"PUBLISH" if rest.len() == 2 => {
            Reply::Integer(shared.pubsub.publish(&rest[0], &rest[1])).encode(output, resp3);
        }
        b"SUBSCRIBE" | b"PSUBSCRIBE" if !rest.is_empty() => {
            let pattern = name.as_slice() == b"PSUBSCRIBE";
            for target in rest {
                if pattern {
                    shared.pubsub.psubscribe(target.clone(), id, &subs.inbox);
                    subs.patterns.insert(target.clone());
                } else {
                    shared.pubsub.subscribe(target.clone(), id, &subs.inbox);
                    subs.channels.insert(target.clone());
                }
                let kind = if pattern { "psubscribe" } else { "subscribe" };
                push(kind, Some(target.clone()), subs.count()).encode(output, resp3);
            }
        }
        b"UNSUBSCRIBE" | b"PUNSUBSCRIBE" => {
            let pattern = name.as_slice() == b"PUNSUBSCRIBE";
            let kind = if pattern {
                "punsubscribe"
            } else {
                "unsubscribe"
            };
            let targets: Vec<Bytes> = if rest.is_empty() {
                let set = if pattern {
                    &subs.patterns
                } else {
                    &subs.channels
                };
                set.iter().cloned().collect()
            } else {
                rest.to_vec()
            };
            if targets.is_empty() {
                push(kind, None, subs.count()).encode(output, resp3);
            }
            for target in targets {
                if pattern {
                    shared.pubsub.punsubscribe(&target, id);
                    subs.patterns.remove(&target);
                } else {
                    shared.pubsub.unsubscribe(&target, id);
                    subs.channels.remove(&target);
                }
                push(kind, Some(target), subs.count()).encode(output, resp3);
            }
        }
        _ => return None,
    }
    Some(())
}

fn message_reply((pattern, channel, payload): Message) -> Reply {
    match pattern {
        Some(pattern) => Reply::Push(vec![
            Reply::bulk("pmessage"),
            Reply::Bulk(pattern),
            Reply::Bulk(channel),
            Reply::Bulk(payload),
        ]),
        None => Reply::Push(vec![
            Reply::bulk("message"),
            Reply::Bulk(channel),
            Reply::Bulk(payload),
        ]),
    }
}

/// Executes (and logs, with persistence on) one command.
fn execute(shared: &Shared, session: &mut Session, args: &[Bytes]) -> Reply {
    match aof::execute_logged(&shared.engine, shared.aof.as_ref(), session, args) {
        Ok(reply) => reply,
        Err(e) => {
            tracing::error!(error = %e, "append-only file write failed");
            Reply::error("MISCONF the write could not be persisted; see the server log")
        }
    }
}

const READ_CHUNK: usize = 16 * 1024;
/// Replies are flushed once this much is buffered, even mid-pipeline.
const WRITE_HIGH_WATER: usize = 64 * 1024;
/// While blocked, input is read (to notice a hang-up) up to this much.
const BLOCKED_INPUT_MAX: usize = 1024 * 1024;

fn is_blocking_pop(args: &[Bytes]) -> bool {
    is(&args[0], "BLPOP") || is(&args[0], "BRPOP")
}

/// What CLIENT LIST shows of this connection besides its session.
fn activity<'a>(
    last: &'a [Bytes],
    subs: &Subscriptions,
    tx: &TxState,
    blocked: bool,
) -> Activity<'a> {
    Activity {
        last_command: last,
        channels: subs.channels.len(),
        patterns: subs.patterns.len(),
        queued: tx.queue.as_ref().map(Vec::len),
        blocked,
    }
}

/// BLPOP/BRPOP found every list empty: waits, holding no lock, until a
/// push lets a retry pop, or the timeout passes (a null reply). `None`
/// when the connection must end (server stopping, client gone).
async fn block_on_lists(
    shared: &Shared,
    session: &mut Session,
    args: &[Bytes],
    socket: &mut TcpStream,
    input: &mut BytesMut,
    stop: &CancellationToken,
) -> Option<Reply> {
    let timeout = match block_timeout(&args[args.len() - 1]) {
        Ok(t) => t,
        Err(e) => return Some(e),
    };
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let wait = shared
        .engine
        .wait_for_lists(session.db, &args[1..args.len() - 1]);
    loop {
        // Registered first, so a push between this try and the wait
        // below still wakes it.
        let reply = {
            let _gate = shared.tx.shared();
            run(shared, session, args)
        };
        if reply != Reply::NilArray {
            return Some(reply);
        }
        let expired = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = wait.ready() => {}
            _ = expired => return Some(Reply::NilArray),
            _ = stop.cancelled() => return None,
            // Whatever the client sends meanwhile waits its turn.
            read = socket.read_buf(input), if input.len() < BLOCKED_INPUT_MAX => {
                if matches!(read, Ok(0) | Err(_)) {
                    return None;
                }
            }
        }
    }
}

/// An HTTP request line or header sent as a command: `POST …` and `Host: …`
/// (Redis's own check), and `GET / HTTP/1.1`, which as a command would be a
/// GET of the wrong arity, so no real command is caught.
fn looks_like_http(args: &[Bytes]) -> bool {
    let name = &args[0];
    name.eq_ignore_ascii_case(b"post")
        || name.eq_ignore_ascii_case(b"host:")
        || (name.eq_ignore_ascii_case(b"get")
            && args.len() == 3
            && args[2].len() >= 6
            && args[2][..5].eq_ignore_ascii_case(b"HTTP/"))
}

pub async fn handle(mut socket: TcpStream, shared: Arc<Shared>, id: u64, stop: CancellationToken) {
    let _ = socket.set_nodelay(true);
    let mut session = Session::new(id);
    let mut authenticated = shared.password.is_none();
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output = BytesMut::with_capacity(READ_CHUNK);
    let (tx, rx) = tokio::sync::mpsc::channel(pubsub::QUEUE);
    let mut subs = Subscriptions {
        inbox: Inbox {
            tx,
            overflowed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        },
        rx,
        channels: Default::default(),
        patterns: Default::default(),
    };
    let _forget = Forget {
        pubsub: shared.pubsub.clone(),
        id,
    };
    let mut tx_state = TxState {
        tx: shared.tx.clone(),
        queue: None,
        watches: Vec::new(),
        dirty: false,
    };
    let address = |a: std::io::Result<std::net::SocketAddr>| a.map(|a| a.to_string());
    let client: ClientHandle = shared.engine.register_client(
        id,
        address(socket.peer_addr()).unwrap_or_default(),
        address(socket.local_addr()).unwrap_or_default(),
    );
    // The last command of a batch (for CLIENT LIST's cmd=); emptied after
    // each batch so the read buffer is not kept alive.
    let mut last: Vec<Bytes> = Vec::new();
    loop {
        input.reserve(READ_CHUNK);
        let read = tokio::select! {
            _ = stop.cancelled() => return,
            read = socket.read_buf(&mut input) => read,
            Some(message) = subs.rx.recv(), if subs.active() => {
                if subs.inbox.overflowed.load(std::sync::atomic::Ordering::Acquire) {
                    // Too far behind: close rather than skip messages.
                    return;
                }
                message_reply(message).encode(&mut output, session.resp3);
                while let Ok(message) = subs.rx.try_recv() {
                    message_reply(message).encode(&mut output, session.resp3);
                    if output.len() >= WRITE_HIGH_WATER {
                        break;
                    }
                }
                if socket.write_all(&output).await.is_err() {
                    return;
                }
                output.clear();
                continue;
            }
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            // Before AUTH, only what AUTH / HELLO need (as Redis does): a
            // client without the password can't make us buffer 512 MiB.
            let limits = if authenticated {
                &shared.limits
            } else {
                &UNAUTHENTICATED
            };
            let args = match resp::parse_command(&mut input, limits) {
                Ok(Some(args)) => args,
                Ok(None) => break,
                Err(e) => {
                    // Answer, then close: the stream can't be resynchronised.
                    Reply::error(format!("ERR {e}")).encode(&mut output, session.resp3);
                    let _ = socket.write_all(&output).await;
                    return;
                }
            };
            if args.is_empty() {
                continue;
            }
            if looks_like_http(&args) {
                // A browser or a proxy sent HTTP here (a cross-protocol
                // attack, or a misconfiguration): close, as Redis does.
                tracing::warn!(
                    client = id,
                    peer = %address(socket.peer_addr()).unwrap_or_default(),
                    "possible security attack: an HTTP request on the RESP port; connection closed"
                );
                return;
            }
            last = args;
            let args = &last;
            if authenticated
                && pubsub_command(&shared, &mut subs, id, args, &mut output, session.resp3)
                    .is_some()
            {
                continue;
            }
            if authenticated
                && subs.active()
                && !session.resp3
                && !allowed_while_subscribed(&args[0])
            {
                Reply::error(format!(
                    "ERR Can't execute '{}': only (P)SUBSCRIBE / (P)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    String::from_utf8_lossy(&args[0]).to_ascii_lowercase()
                ))
                .encode(&mut output, session.resp3);
                continue;
            }
            let snapshot = if authenticated {
                snapshot_command(&shared, args).await
            } else {
                None
            };
            let mut reply = if let Some(reply) = snapshot {
                reply
            } else if authenticated {
                match auth_command(args, &shared) {
                    Some(reply) => reply,
                    None => match transaction_command(&shared, &mut tx_state, &mut session, args) {
                        Some(reply) => reply,
                        None => {
                            let _gate = shared.tx.shared();
                            run(&shared, &mut session, args)
                        }
                    },
                }
            } else {
                match auth_command(args, &shared) {
                    Some(reply) => {
                        if !reply.is_error() {
                            authenticated = true;
                        }
                        reply
                    }
                    None if is(&args[0], "QUIT") => execute(&shared, &mut session, args),
                    // HELLO … AUTH user pass: the password was right (a
                    // wrong one answered above); the HELLO itself runs.
                    None if is(&args[0], "HELLO") && args.iter().any(|a| is(a, "AUTH")) => {
                        authenticated = true;
                        let _gate = shared.tx.shared();
                        run(&shared, &mut session, args)
                    }
                    None if is(&args[0], "HELLO") => Reply::error(
                        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
                    ),
                    None => Reply::error("NOAUTH Authentication required."),
                }
            };
            // Nothing to pop (and not in MULTI, where it was queued): answer
            // what came before, then wait.
            if reply == Reply::NilArray && is_blocking_pop(args) {
                if !output.is_empty() {
                    if socket.write_all(&output).await.is_err() {
                        return;
                    }
                    output.clear();
                }
                client.update(&session, activity(args, &subs, &tx_state, true));
                let blocked =
                    block_on_lists(&shared, &mut session, args, &mut socket, &mut input, &stop);
                match blocked.await {
                    Some(popped) => reply = popped,
                    None => return,
                }
            }
            reply.encode(&mut output, session.resp3);
            if session.closing {
                let _ = socket.write_all(&output).await;
                return;
            }
            if output.len() >= WRITE_HIGH_WATER {
                if socket.write_all(&output).await.is_err() {
                    return;
                }
                output.clear();
            }
        }
        if !last.is_empty() {
            client.update(&session, activity(&last, &subs, &tx_state, false));
            last.clear();
        }
        if !output.is_empty() {
            if socket.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
        }
    }
}

fn allowed_while_subscribed(name: &Bytes) -> bool {
    ["PING", "QUIT", "RESET"].iter().any(|w| is(name, w))
}

/// Drops a connection's subscriptions when it ends, however it ends.
struct Forget {
    pubsub: Arc<PubSub>,
    id: u64,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.pubsub.forget(self.id);
    }
}

fn is(arg: &Bytes, word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// AUTH (and HELLO … AUTH) are checked here, where the password lives.
/// SAVE, BGSAVE, LASTSAVE: snapshots are written off the async threads.
async fn snapshot_command(shared: &Shared, args: &[Bytes]) -> Option<Reply> {
    if !["SAVE", "BGSAVE", "LASTSAVE"]
        .iter()
        .any(|w| is(&args[0], w))
    {
        return None;
    }
    let name = args[0].to_ascii_uppercase();
    let lower = String::from_utf8_lossy(&name).to_ascii_lowercase();
    if args.len() > 1 {
        return Some(Reply::error(format!(
            "ERR wrong number of arguments for '{lower}' command"
        )));
    }
    let Some(snapshots) = shared.snapshots.clone() else {
        return Some(Reply::error(
            "ERR snapshots are not configured on this server",
        ));
    };
    Some(match name.as_slice() {
        b"LASTSAVE" => Reply::Integer(snapshots.last_save() as i64),
        b"SAVE" => match tokio::task::spawn_blocking(move || snapshots.save()).await {
            Ok(Ok(_)) => Reply::ok(),
            Ok(Err(e)) => Reply::error(format!("ERR {e}")),
            Err(e) => Reply::error(format!("ERR snapshot failed: {e}")),
        },
        _ if snapshots.in_progress() => Reply::error("ERR Background save already in progress"),
        _ => {
            tokio::task::spawn_blocking(move || {
                if let Err(e) = snapshots.save() {
                    tracing::error!(error = %e, "background snapshot failed");
                }
            });
            Reply::Simple("Background saving started")
        }
    })
}

fn auth_command(args: &[Bytes], shared: &Shared) -> Option<Reply> {
    if is(&args[0], "AUTH") {
        let given = match args.len() {
            2 => &args[1],
            3 => &args[2], // AUTH username password: the user is "default"
            _ => {
                return Some(Reply::error(
                    "ERR wrong number of arguments for 'auth' command",
                ));
            }
        };
        return Some(check_password(shared, given));
    }
    if is(&args[0], "HELLO") {
        if let Some(i) = args.iter().position(|a| is(a, "AUTH"))
            && let Some(password) = args.get(i + 2)
        {
            let checked = check_password(shared, password);
            if checked.is_error() {
                return Some(checked);
            }
        } else if let Some(i) = args.iter().position(|a| is(a, "AUTH")) {
            return Some(Reply::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            )));
        }
    }
    None
}

fn check_password(shared: &Shared, given: &[u8]) -> Reply {
    match &shared.password {
        None => Reply::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ),
        Some(expected) if bool::from(expected.as_slice().ct_eq(given)) => Reply::ok(),
        Some(_) => Reply::error("WRONGPASS invalid username-password pair or user is disabled."),
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_http;
    use bytes::Bytes;

    fn line(text: &str) -> Vec<Bytes> {
        text.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn http_lines_are_recognised_and_commands_are_not() {
        for http in ["POST / HTTP/1.1", "post /x", "Host: a", "GET / HTTP/1.0"] {
            assert!(looks_like_http(&line(http)), "{http}");
        }
        for command in ["GET k", "SET k HTTP/1.1", "GET a b", "HOST a", "PING"] {
            assert!(!looks_like_http(&line(command)), "{command}");
        }
    }
}
