//! The connected clients, for CLIENT LIST and CLIENT INFO.
//!
//! A connection registers when it opens and refreshes its entry once per
//! batch of commands it read (not per command): one uncontended lock per
//! read, none on the engine's shared state. The listing connection's own
//! line is built from its live session instead.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;

use super::{Engine, Session, eq, parse_i64};
use crate::kv::reply::Reply;

#[derive(Default)]
pub(super) struct Registry {
    clients: Mutex<BTreeMap<u64, Arc<Mutex<View>>>>,
}

/// What a connection last reported about itself.
#[derive(Debug, Clone)]
struct View {
    addr: String,
    laddr: String,
    connected: Instant,
    last_active: Instant,
    db: usize,
    name: Option<Bytes>,
    resp3: bool,
    lib_name: Option<Bytes>,
    lib_ver: Option<Bytes>,
    /// `cmd=` of the last command (`client|list` style); empty = none yet.
    cmd: String,
    channels: usize,
    patterns: usize,
    /// Commands queued in MULTI, if in one.
    queued: Option<usize>,
    blocked: bool,
}

impl View {
    fn new(addr: String, laddr: String) -> View {
        let now = Instant::now();
        View {
            addr,
            laddr,
            connected: now,
            last_active: now,
            db: 0,
            name: None,
            resp3: false,
            lib_name: None,
            lib_ver: None,
            cmd: String::new(),
            channels: 0,
            patterns: 0,
            queued: None,
            blocked: false,
        }
    }

    /// Takes what the engine knows from the session.
    fn absorb(&mut self, session: &Session) {
        self.db = session.db;
        self.resp3 = session.resp3;
        if self.name != session.name {
            self.name.clone_from(&session.name);
        }
        if self.lib_name != session.lib_name {
            self.lib_name.clone_from(&session.lib_name);
        }
        if self.lib_ver != session.lib_ver {
            self.lib_ver.clone_from(&session.lib_ver);
        }
    }

    fn pubsub(&self) -> bool {
        self.channels + self.patterns > 0
    }

    fn line(&self, id: u64, now: Instant, out: &mut String) {
        let text = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let mut flags = String::new();
        if self.blocked {
            flags.push('b');
        }
        if self.pubsub() {
            flags.push('P');
        }
        if self.queued.is_some() {
            flags.push('x');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let _ = writeln!(
            out,
            "id={id} addr={} laddr={} name={} age={} idle={} flags={flags} db={} sub={} psub={} ssub=0 multi={} cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.addr,
            self.laddr,
            text(&self.name),
            now.saturating_duration_since(self.connected).as_secs(),
            now.saturating_duration_since(self.last_active).as_secs(),
            self.db,
            self.channels,
            self.patterns,
            self.queued.map_or(-1, |n| n as i64),
            if self.cmd.is_empty() {
                "NULL"
            } else {
                &self.cmd
            },
            if self.resp3 { 3 } else { 2 },
            text(&self.lib_name),
            text(&self.lib_ver),
        );
    }
}

/// Commands whose `cmd=` includes the subcommand.
const CONTAINERS: &[&str] = &["client", "command", "config", "object", "pubsub"];

/// Writes `cmd=`'s value for `args` into `out`, reusing its buffer (this
/// runs once per batch of commands).
fn command_name(args: &[Bytes], out: &mut String) {
    // Command names are ASCII; anything else only needs to stay printable.
    let lower = |out: &mut String, word: &[u8]| {
        out.extend(word.iter().map(|b| char::from(b.to_ascii_lowercase())));
    };
    out.clear();
    let Some(name) = args.first() else {
        return;
    };
    lower(out, name);
    if let Some(sub) = args.get(1)
        && CONTAINERS.contains(&out.as_str())
    {
        out.push('|');
        lower(out, sub);
    }
}

/// What the connection knows that the engine does not.
#[derive(Debug, Clone, Copy, Default)]
pub struct Activity<'a> {
    /// The last command run (empty if none).
    pub last_command: &'a [Bytes],
    pub channels: usize,
    pub patterns: usize,
    /// Commands queued, while in MULTI.
    pub queued: Option<usize>,
    /// Waiting in a blocking command.
    pub blocked: bool,
}

/// A connection's entry in the client list; dropping it removes it.
pub struct ClientHandle {
    registry: Arc<Registry>,
    id: u64,
    view: Arc<Mutex<View>>,
}

impl ClientHandle {
    /// Refreshes the entry (once per batch of commands).
    pub fn update(&self, session: &Session, activity: Activity<'_>) {
        let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        view.absorb(session);
        if !activity.last_command.is_empty() {
            command_name(activity.last_command, &mut view.cmd);
        }
        view.last_active = Instant::now();
        view.channels = activity.channels;
        view.patterns = activity.patterns;
        view.queued = activity.queued;
        view.blocked = activity.blocked;
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        self.registry
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// CLIENT LIST's filters.
enum Filter {
    All,
    Normal,
    PubSub,
    /// master / replica / slave: we have none.
    Nobody,
    Ids(Vec<u64>),
}

impl Filter {
    fn parse(a: &[Bytes]) -> Result<Filter, Reply> {
        match a {
            [] => Ok(Filter::All),
            [word, kind] if eq(word, "TYPE") => {
                let kind_lower = String::from_utf8_lossy(kind).to_ascii_lowercase();
                match kind_lower.as_str() {
                    "normal" => Ok(Filter::Normal),
                    "pubsub" => Ok(Filter::PubSub),
                    "master" | "replica" | "slave" => Ok(Filter::Nobody),
                    _ => Err(Reply::error(format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(kind)
                    ))),
                }
            }
            [word, ids @ ..] if eq(word, "ID") && !ids.is_empty() => ids
                .iter()
                .map(|id| {
                    parse_i64(id)
                        .filter(|n| *n > 0)
                        .map(|n| n as u64)
                        .ok_or_else(|| Reply::error("ERR Invalid client ID"))
                })
                .collect::<Result<Vec<u64>, Reply>>()
                .map(Filter::Ids),
            _ => Err(Reply::error(super::SYNTAX)),
        }
    }

    fn keeps(&self, id: u64, view: &View) -> bool {
        match self {
            Filter::All => true,
            Filter::Normal => !view.pubsub(),
            Filter::PubSub => view.pubsub(),
            Filter::Nobody => false,
            Filter::Ids(ids) => ids.contains(&id),
        }
    }
}

impl Engine {
    /// Lists a connection (from `addr`, accepted on `laddr`) in CLIENT
    /// LIST until the returned handle is dropped.
    pub fn register_client(&self, id: u64, addr: String, laddr: String) -> ClientHandle {
        let view = Arc::new(Mutex::new(View::new(addr, laddr)));
        self.client_registry
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, view.clone());
        ClientHandle {
            registry: self.client_registry.clone(),
            id,
            view,
        }
    }

    /// The calling connection's view: its registered entry brought up to
    /// date with the live session and the command running now.
    fn own_view(&self, session: &Session, args: &[Bytes]) -> View {
        let registered = self
            .client_registry
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&session.id)
            .cloned();
        let mut view = match registered {
            Some(v) => v.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            None => View::new(String::new(), String::new()),
        };
        view.absorb(session);
        view.last_active = Instant::now();
        command_name(args, &mut view.cmd);
        view
    }

    /// CLIENT INFO (`args` is the whole command, for `cmd=`).
    pub(super) fn client_info(&self, session: &Session, args: &[Bytes]) -> Reply {
        let mut out = String::new();
        self.own_view(session, args)
            .line(session.id, Instant::now(), &mut out);
        Reply::bulk(out)
    }

    /// CLIENT LIST [TYPE …] [ID …]; `filters` follows LIST.
    pub(super) fn client_list(
        &self,
        session: &Session,
        args: &[Bytes],
        filters: &[Bytes],
    ) -> Reply {
        let filter = match Filter::parse(filters) {
            Ok(f) => f,
            Err(e) => return e,
        };
        let slots: Vec<(u64, Arc<Mutex<View>>)> = self
            .client_registry
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, v)| (*id, v.clone()))
            .collect();
        let now = Instant::now();
        let own = self.own_view(session, args);
        let mut out = String::new();
        let mut own_listed = false;
        for (id, slot) in slots {
            let view = if id == session.id {
                own_listed = true;
                own.clone()
            } else {
                slot.lock().unwrap_or_else(|e| e.into_inner()).clone()
            };
            if filter.keeps(id, &view) {
                view.line(id, now, &mut out);
            }
        }
        if !own_listed && filter.keeps(session.id, &own) {
            own.line(session.id, now, &mut out);
        }
        Reply::bulk(out)
    }
}
