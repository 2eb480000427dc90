//! One client connection: read what arrived, answer every complete command
//! in it (pipelining), write the replies in one go.

use std::sync::Arc;

use bunbase_core::kv::aof::{self, Aof};
use bunbase_core::kv::engine::Session;
use bunbase_core::kv::resp::{self, Limits};
use bunbase_core::kv::{Engine, Reply};
use bytes::{Bytes, BytesMut};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// What every connection shares.
pub struct Shared {
    pub engine: Arc<Engine>,
    pub limits: Limits,
    pub password: Option<Vec<u8>>,
    pub aof: Option<Arc<Aof>>,
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

pub async fn handle(mut socket: TcpStream, shared: Arc<Shared>, id: u64, stop: CancellationToken) {
    let _ = socket.set_nodelay(true);
    let mut session = Session::new(id);
    let mut authenticated = shared.password.is_none();
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output = BytesMut::with_capacity(READ_CHUNK);
    loop {
        input.reserve(READ_CHUNK);
        let read = tokio::select! {
            _ = stop.cancelled() => return,
            read = socket.read_buf(&mut input) => read,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            let args = match resp::parse_command(&mut input, &shared.limits) {
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
            let reply = if authenticated {
                match auth_command(&args, &shared) {
                    Some(reply) => reply,
                    None => execute(&shared, &mut session, &args),
                }
            } else {
                match auth_command(&args, &shared) {
                    Some(reply) => {
                        if !reply.is_error() {
                            authenticated = true;
                        }
                        reply
                    }
                    None if is(&args[0], "QUIT") => execute(&shared, &mut session, &args),
                    None => Reply::error("NOAUTH Authentication required."),
                }
            };
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
        if !output.is_empty() {
            if socket.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
        }
    }
}

fn is(arg: &Bytes, word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// AUTH (and HELLO … AUTH) are checked here, where the password lives.
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
        } else if shared.password.is_some() && args.len() >= 2 {
            // HELLO without AUTH is allowed only once authenticated; the
            // caller decides by whether it is authenticated already.
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
