//! The functions store conformance suite.
//!
//! Every [`FunctionStore`] must pass [`suite`]. It works in fresh random
//! projects (and lease names), so it can run again and again on a shared
//! store; it panics on the first difference. It takes the store as an
//! `Arc` to race calls from spawned tasks, on several threads when the
//! runtime has them.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use crate::error::{Error, ErrorCode};
use crate::functions::model::{
    AuthMode, FunctionInfo, FunctionName, Invocation, Limits, LogLine, LogQuery, Outcome, Trigger,
    TriggerKind, Version,
};
use crate::functions::store::FunctionStore;
use crate::id::{ProjectId, random_hex};

/// Runs every check on `store`.
pub async fn suite(store: Arc<dyn FunctionStore>) {
    assert!(!store.kind().is_empty());
    store.check().await.expect("check");
    let s = store.as_ref();
    deploys_and_rollbacks(s).await;
    listing_and_isolation(s).await;
    deleting(s).await;
    triggered(s).await;
    invocation_log(s).await;
    pruning(s).await;
    cursors(s).await;
    leases(s).await;
    concurrent_deploys(&store).await;
    concurrent_leases(&store).await;
    forgetting_projects(s).await;
}

fn project() -> ProjectId {
    ProjectId::new(format!("p-{}", random_hex(6))).expect("project id")
}

fn name(raw: &str) -> FunctionName {
    FunctionName::new(raw).expect("function name")
}

/// A version to deploy, with every field set to something that must
/// survive storage (`number` is the store's to set: this one is wrong).
fn version(project: &ProjectId, function: &str, triggers: Vec<Trigger>) -> Version {
    let mut env = BTreeMap::new();
    env.insert("GREETING".to_string(), "hé \"there\"; {json}\n".to_string());
    env.insert("EMPTY".to_string(), String::new());
    Version {
        project: project.clone(),
        function: name(function),
        number: 77,
        created_at: 1_700_000_000_000,
        deployed_by: "user-1".to_string(),
        bundle_id: random_hex(16),
        bundle_bytes: 12_345,
        bundle_sha256: random_hex(32),
        entry: "src/index.ts".to_string(),
        env,
        secrets: vec!["STRIPE_KEY".to_string(), "DB_PASSWORD".to_string()],
        triggers,
        auth: AuthMode::EndUsers,
        limits: Limits {
            memory_mb: 64,
            cpu_ms: 50,
            wall_ms: 10_000,
            request_bytes: 1 << 20,
            response_bytes: 6 << 20,
            concurrency: 8,
        },
        allow_hosts: vec!["api.example.com".to_string(), "*.example.com".to_string()],
    }
}

fn event(topic: &str) -> Trigger {
    Trigger::Event {
        topic: topic.to_string(),
    }
}

/// Deploys `v`: it comes back as stored, numbered `number`.
async fn deploy(store: &dyn FunctionStore, v: Version, number: u32) -> Version {
    let stored = store
        .add_version(v.clone())
        .await
        .unwrap_or_else(|e| panic!("deploy {}: {e}", v.function));
    assert_eq!(
        stored,
        Version { number, ..v },
        "deployed as given, numbered"
    );
    stored
}

/// The code of the error `result` must be.
fn code<T: Debug>(result: Result<T, Error>, what: &str) -> ErrorCode {
    match result {
        Ok(v) => panic!("{what}: expected an error, got Ok({v:?})"),
        Err(e) => e.code(),
    }
}

async fn info(store: &dyn FunctionStore, project: &ProjectId, function: &str) -> FunctionInfo {
    store
        .function(project, &name(function))
        .await
        .expect("function")
        .unwrap_or_else(|| panic!("function {function} missing"))
}

async fn numbers(store: &dyn FunctionStore, project: &ProjectId, function: &str) -> Vec<u32> {
    store
        .versions(project, &name(function))
        .await
        .expect("versions")
        .into_iter()
        .map(|v| v.number)
        .collect()
}

async fn deploys_and_rollbacks(store: &dyn FunctionStore) {
    let p = project();
    let f = name("hello");

    // The first deploy creates the function.
    assert_eq!(store.function(&p, &f).await.unwrap(), None);
    let v1 = deploy(store, version(&p, "hello", vec![]), 1).await;
    let created = info(store, &p, "hello").await;
    assert_eq!(
        (created.project.clone(), created.name.clone()),
        (p.clone(), f.clone())
    );
    assert_eq!((created.active, created.latest), (1, 1));
    assert_eq!(created.created_at, v1.created_at);
    assert_eq!(store.version(&p, &f, 1).await.unwrap(), Some(v1.clone()));

    // The next one is 2, and serves.
    let mut second = version(&p, "hello", vec![event("orders.*")]);
    second.created_at += 60_000;
    second.auth = AuthMode::Public;
    second.env.clear();
    second.secrets.clear();
    second.allow_hosts.clear();
    let v2 = deploy(store, second, 2).await;
    let after = info(store, &p, "hello").await;
    assert_eq!((after.active, after.latest), (2, 2));
    assert_eq!(after.created_at, created.created_at, "created_at stays");
    assert!(after.updated_at >= v2.created_at);
    assert_eq!(store.version(&p, &f, 2).await.unwrap(), Some(v2.clone()));
    assert_eq!(store.version(&p, &f, 3).await.unwrap(), None);
    assert_eq!(store.version(&p, &f, 0).await.unwrap(), None);
    assert_eq!(
        store.versions(&p, &f).await.unwrap(),
        vec![v2.clone(), v1.clone()],
        "newest first"
    );

    // A rollback moves `active` only; numbers are never reused.
    let rolled = store.activate(&p, &f, 1).await.expect("activate 1");
    assert_eq!((rolled.active, rolled.latest), (1, 2));
    assert_eq!(info(store, &p, "hello").await, rolled);
    let v3 = deploy(store, version(&p, "hello", vec![]), 3).await;
    let now = info(store, &p, "hello").await;
    assert_eq!((now.active, now.latest), (3, 3));
    assert_eq!(numbers(store, &p, "hello").await, vec![3, 2, 1]);
    let again = store.activate(&p, &f, 2).await.expect("activate 2");
    assert_eq!((again.active, again.latest), (2, 3));
    assert_eq!(store.activate(&p, &f, 3).await.unwrap().active, 3);

    // Activating what is not there changes nothing.
    let before = info(store, &p, "hello").await;
    for missing in [0, 4, 99] {
        assert_eq!(
            code(store.activate(&p, &f, missing).await, "missing version"),
            ErrorCode::NotFound
        );
    }
    assert_eq!(
        code(
            store.activate(&p, &name("nope"), 1).await,
            "missing function"
        ),
        ErrorCode::NotFound
    );
    assert_eq!(info(store, &p, "hello").await, before);
    assert_eq!(store.function(&p, &name("nope")).await.unwrap(), None);
    assert_eq!(store.version(&p, &name("nope"), 1).await.unwrap(), None);
    assert!(store.versions(&p, &name("nope")).await.unwrap().is_empty());
    assert_eq!(store.version(&p, &f, 3).await.unwrap(), Some(v3));
}

async fn listing_and_isolation(store: &dyn FunctionStore) {
    let (p, q) = (project(), project());
    // Byte order: '-' < '0' < '_' < 'a'.
    for function in ["b-fn", "a_fn", "c1", "a-fn", "a0"] {
        deploy(store, version(&p, function, vec![]), 1).await;
    }
    let listed: Vec<String> = store
        .functions(&p)
        .await
        .unwrap()
        .into_iter()
        .map(|f| {
            assert_eq!(f.project, p);
            f.name.to_string()
        })
        .collect();
    assert_eq!(listed, ["a-fn", "a0", "a_fn", "b-fn", "c1"]);

    // Another project sees nothing, and cannot touch p's functions.
    let f = name("a-fn");
    assert!(store.functions(&q).await.unwrap().is_empty());
    assert_eq!(store.function(&q, &f).await.unwrap(), None);
    assert_eq!(store.version(&q, &f, 1).await.unwrap(), None);
    assert!(store.versions(&q, &f).await.unwrap().is_empty());
    assert_eq!(
        code(store.activate(&q, &f, 1).await, "activate elsewhere"),
        ErrorCode::NotFound
    );
    assert!(store.delete_function(&q, &f).await.unwrap().is_empty());
    assert_eq!(
        code(
            store.set_cursor(&q, &f, "event:x", 1).await,
            "cursor elsewhere"
        ),
        ErrorCode::NotFound
    );
    assert_eq!(store.functions(&p).await.unwrap().len(), 5);
    assert_eq!(numbers(store, &p, "a-fn").await, vec![1]);

    // The same name in q is its own function, numbered from 1.
    deploy(store, version(&q, "a-fn", vec![]), 1).await;
    deploy(store, version(&q, "a-fn", vec![]), 2).await;
    assert_eq!(numbers(store, &p, "a-fn").await, vec![1]);
    assert_eq!(info(store, &p, "a-fn").await.latest, 1);
    assert_eq!(store.functions(&q).await.unwrap().len(), 1);
}

async fn deleting(store: &dyn FunctionStore) {
    let p = project();
    let f = name("doomed");
    let mut deployed = Vec::new();
    for number in 1..=3 {
        deployed.push(deploy(store, version(&p, "doomed", vec![event("a")]), number).await);
    }
    let keep = deploy(store, version(&p, "kept", vec![]), 1).await;
    store.set_cursor(&p, &f, "event:a", 42).await.unwrap();
    store
        .set_cursor(&p, &name("kept"), "event:a", 7)
        .await
        .unwrap();
    let logged = invocation(&p, "doomed", 1_700_000_000_000, 3);
    store.record(&logged).await.unwrap();

    let mut removed = store.delete_function(&p, &f).await.expect("delete");
    removed.sort_by_key(|v| v.number);
    assert_eq!(removed, deployed);
    assert_eq!(store.function(&p, &f).await.unwrap(), None);
    assert!(store.versions(&p, &f).await.unwrap().is_empty());
    assert_eq!(store.version(&p, &f, 1).await.unwrap(), None);
    assert_eq!(store.cursor(&p, &f, "event:a").await.unwrap(), None);
    let left: Vec<FunctionName> = store
        .functions(&p)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(left, vec![name("kept")]);
    assert!(
        !store
            .triggered()
            .await
            .unwrap()
            .iter()
            .any(|v| v.project == p),
        "a deleted function runs on no trigger"
    );
    // The rest of the project is as it was; the log stays.
    assert_eq!(store.versions(&p, &name("kept")).await.unwrap(), vec![keep]);
    assert_eq!(
        store.cursor(&p, &name("kept"), "event:a").await.unwrap(),
        Some(7)
    );
    assert_eq!(
        store.invocations(&p, &page(10)).await.unwrap(),
        vec![logged]
    );
    assert_eq!(
        code(
            store.set_cursor(&p, &f, "event:a", 43).await,
            "cursor of a deleted function"
        ),
        ErrorCode::NotFound
    );

    // Deleting it again finds nothing; deploying the name again starts over.
    assert!(store.delete_function(&p, &f).await.unwrap().is_empty());
    deploy(store, version(&p, "doomed", vec![]), 1).await;
    let reborn = info(store, &p, "doomed").await;
    assert_eq!((reborn.active, reborn.latest), (1, 1));
    assert_eq!(numbers(store, &p, "doomed").await, vec![1]);
    assert_eq!(store.cursor(&p, &f, "event:a").await.unwrap(), None);
}

/// `store.triggered()`, only project `p`'s, as (function, number).
async fn triggered_in(store: &dyn FunctionStore, p: &ProjectId) -> Vec<(String, u32)> {
    let all = store.triggered().await.expect("triggered");
    for v in &all {
        assert!(!v.triggers.is_empty(), "{} has no trigger", v.function);
    }
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| (&a.project, &a.function).cmp(&(&b.project, &b.function)));
    assert_eq!(
        all.iter()
            .map(|v| (&v.project, &v.function))
            .collect::<Vec<_>>(),
        sorted
            .iter()
            .map(|v| (&v.project, &v.function))
            .collect::<Vec<_>>(),
        "by project, then function"
    );
    all.into_iter()
        .filter(|v| &v.project == p)
        .map(|v| (v.function.to_string(), v.number))
        .collect()
}

async fn triggered(store: &dyn FunctionStore) {
    let (p, q) = (project(), project());
    assert!(triggered_in(store, &p).await.is_empty());

    let t1 = deploy(store, version(&p, "ticker", vec![event("orders.*")]), 1).await;
    deploy(store, version(&p, "http-only", vec![]), 1).await;
    assert_eq!(triggered_in(store, &p).await, [("ticker".to_string(), 1)]);
    let listed = store.triggered().await.unwrap();
    assert_eq!(listed.iter().find(|v| v.project == p), Some(&t1));

    // A deploy without triggers takes it off the list; a rollback puts it back.
    deploy(store, version(&p, "ticker", vec![]), 2).await;
    assert!(triggered_in(store, &p).await.is_empty());
    store.activate(&p, &name("ticker"), 1).await.unwrap();
    assert_eq!(triggered_in(store, &p).await, [("ticker".to_string(), 1)]);
    store.activate(&p, &name("ticker"), 2).await.unwrap();
    assert!(triggered_in(store, &p).await.is_empty());
    store.activate(&p, &name("ticker"), 1).await.unwrap();

    // Every kind of trigger counts; several per version.
    let all_kinds = vec![
        Trigger::Schedule {
            cron: "*/5 * * * *".to_string(),
        },
        Trigger::Document {
            collection: "orders".to_string(),
        },
        event("users.created"),
    ];
    let s1 = deploy(store, version(&p, "sweeper", all_kinds), 1).await;
    deploy(
        store,
        version(
            &q,
            "other",
            vec![Trigger::Document {
                collection: "x".to_string(),
            }],
        ),
        1,
    )
    .await;
    assert_eq!(
        triggered_in(store, &p).await,
        [("sweeper".to_string(), 1), ("ticker".to_string(), 1)]
    );
    assert_eq!(triggered_in(store, &q).await, [("other".to_string(), 1)]);
    let listed = store.triggered().await.unwrap();
    assert!(listed.contains(&s1), "listed as stored");

    // Deleting a function takes it off.
    store.delete_function(&p, &name("ticker")).await.unwrap();
    assert_eq!(triggered_in(store, &p).await, [("sweeper".to_string(), 1)]);
    assert_eq!(triggered_in(store, &q).await, [("other".to_string(), 1)]);
}

/// An invocation of `function` started at `started_at`, different in each
/// field according to `n`.
fn invocation(project: &ProjectId, function: &str, started_at: u64, n: u32) -> Invocation {
    let outcomes = [
        Outcome::Ok,
        Outcome::Error,
        Outcome::Timeout,
        Outcome::CpuLimit,
        Outcome::MemoryLimit,
        Outcome::ResponseTooLarge,
        Outcome::Throttled,
    ];
    let triggers = [
        TriggerKind::Http,
        TriggerKind::Event,
        TriggerKind::Schedule,
        TriggerKind::Document,
    ];
    let outcome = outcomes[n as usize % outcomes.len()];
    Invocation {
        id: format!("{started_at:013}-{}", random_hex(4)),
        project: project.clone(),
        function: name(function),
        version: n + 1,
        trigger: triggers[n as usize % triggers.len()],
        outcome,
        status: (outcome == Outcome::Ok).then_some(200 + n as u16),
        started_at,
        duration_us: 1_000 + u64::from(n),
        cold: n.is_multiple_of(2),
        error: (outcome != Outcome::Ok).then(|| format!("failed \"{n}\": {{oops}}")),
        logs: (0..n % 3)
            .map(|i| LogLine {
                level: "warn".to_string(),
                message: format!("line {i} ✓ \"quoted\"\n{{}}"),
            })
            .collect(),
        logs_truncated: n % 3 == 2,
    }
}

fn page(limit: usize) -> LogQuery {
    LogQuery {
        function: None,
        before: None,
        limit,
    }
}

fn ids(invocations: &[Invocation]) -> Vec<String> {
    invocations.iter().map(|i| i.id.clone()).collect()
}

async fn invocation_log(store: &dyn FunctionStore) {
    let (p, q) = (project(), project());
    deploy(store, version(&p, "a", vec![]), 1).await;
    deploy(store, version(&p, "b", vec![]), 1).await;
    let base = 1_700_000_000_000;
    let mut recorded = Vec::new();
    for n in 0..12u32 {
        let function = if n.is_multiple_of(3) { "b" } else { "a" };
        let i = invocation(&p, function, base + u64::from(n) * 1_000, n);
        store.record(&i).await.expect("record");
        recorded.push(i);
    }
    let newest_first: Vec<Invocation> = recorded.iter().rev().cloned().collect();

    // Everything, as recorded, newest first.
    assert_eq!(
        store.invocations(&p, &page(100)).await.unwrap(),
        newest_first
    );
    // The limit is taken within 1..=1000.
    assert_eq!(
        store.invocations(&p, &page(0)).await.unwrap(),
        newest_first[..1]
    );
    assert_eq!(
        store.invocations(&p, &page(usize::MAX)).await.unwrap(),
        newest_first
    );

    // Paging by the last id.
    let mut paged = Vec::new();
    let mut query = page(5);
    loop {
        let got = store.invocations(&p, &query).await.unwrap();
        assert!(got.len() <= 5);
        let Some(last) = got.last() else { break };
        query.before = Some(last.id.clone());
        paged.extend(got);
    }
    assert_eq!(paged, newest_first);

    // One function's, paged too.
    let of_a: Vec<String> = newest_first
        .iter()
        .filter(|i| i.function.as_str() == "a")
        .map(|i| i.id.clone())
        .collect();
    let mut query = LogQuery {
        function: Some(name("a")),
        before: None,
        limit: 3,
    };
    let first = store.invocations(&p, &query).await.unwrap();
    assert_eq!(ids(&first), of_a[..3]);
    query.before = Some(of_a[2].clone());
    query.limit = 100;
    assert_eq!(
        ids(&store.invocations(&p, &query).await.unwrap()),
        of_a[3..]
    );
    // A cursor that is no id at all still bounds the page.
    query.before = Some(format!("{:013}", base + 5_000));
    let older: Vec<String> = of_a
        .iter()
        .filter(|id| id.as_str() < query.before.as_deref().unwrap_or_default())
        .cloned()
        .collect();
    assert_eq!(older.len(), 3);
    assert_eq!(ids(&store.invocations(&p, &query).await.unwrap()), older);
    let none = LogQuery {
        function: Some(name("never-ran")),
        before: None,
        limit: 10,
    };
    assert!(store.invocations(&p, &none).await.unwrap().is_empty());

    // Another project sees none of them.
    assert!(store.invocations(&q, &page(100)).await.unwrap().is_empty());
    let of_a_in_q = LogQuery {
        function: Some(name("a")),
        before: None,
        limit: 10,
    };
    assert!(store.invocations(&q, &of_a_in_q).await.unwrap().is_empty());

    // An id is recorded once.
    assert_eq!(
        code(store.record(&recorded[0]).await, "record twice"),
        ErrorCode::AlreadyExists
    );
    assert_eq!(store.invocations(&p, &page(100)).await.unwrap().len(), 12);
}

async fn pruning(store: &dyn FunctionStore) {
    // Times no other check uses (they record from 2023 on), so the counts
    // are exact on a shared store; this check removes its own at the end.
    let (p, q) = (project(), project());
    let mut at = Vec::new();
    for (n, started_at) in [10, 20, 30, 40].into_iter().enumerate() {
        let i = invocation(&p, "pruned", started_at, n as u32);
        store.record(&i).await.unwrap();
        at.push(i);
    }
    let kept = invocation(&q, "other", 1_700_000_000_000, 0);
    store.record(&kept).await.unwrap();

    assert_eq!(
        store.prune_invocations(10).await.unwrap(),
        0,
        "10 is not before 10"
    );
    assert_eq!(store.prune_invocations(25).await.unwrap(), 2);
    assert_eq!(
        ids(&store.invocations(&p, &page(10)).await.unwrap()),
        vec![at[3].id.clone(), at[2].id.clone()]
    );
    assert_eq!(store.prune_invocations(25).await.unwrap(), 0);
    assert_eq!(store.prune_invocations(41).await.unwrap(), 2);
    assert!(store.invocations(&p, &page(10)).await.unwrap().is_empty());
    assert_eq!(store.invocations(&q, &page(10)).await.unwrap(), vec![kept]);
}

async fn cursors(store: &dyn FunctionStore) {
    let p = project();
    let (f, g) = (name("reader"), name("writer"));
    deploy(store, version(&p, "reader", vec![]), 1).await;
    deploy(store, version(&p, "writer", vec![]), 1).await;

    assert_eq!(store.cursor(&p, &f, "event:a").await.unwrap(), None);
    store.set_cursor(&p, &f, "event:a", 5).await.unwrap();
    assert_eq!(store.cursor(&p, &f, "event:a").await.unwrap(), Some(5));
    store.set_cursor(&p, &f, "event:a", 9).await.unwrap();
    assert_eq!(store.cursor(&p, &f, "event:a").await.unwrap(), Some(9));
    // It may go back (a replay), and 0 is a value.
    store.set_cursor(&p, &f, "event:a", 0).await.unwrap();
    assert_eq!(store.cursor(&p, &f, "event:a").await.unwrap(), Some(0));
    store.set_cursor(&p, &f, "event:a", 1 << 40).await.unwrap();

    // Per key and per function.
    assert_eq!(store.cursor(&p, &f, "document:a").await.unwrap(), None);
    assert_eq!(store.cursor(&p, &g, "event:a").await.unwrap(), None);
    store.set_cursor(&p, &g, "event:a", 3).await.unwrap();
    store.set_cursor(&p, &f, "document:a", 4).await.unwrap();
    assert_eq!(
        store.cursor(&p, &f, "event:a").await.unwrap(),
        Some(1 << 40)
    );
    assert_eq!(store.cursor(&p, &g, "event:a").await.unwrap(), Some(3));
    assert_eq!(store.cursor(&p, &f, "document:a").await.unwrap(), Some(4));

    // Only a function's own.
    assert_eq!(
        code(
            store.set_cursor(&p, &name("ghost"), "event:a", 1).await,
            "cursor of a missing function"
        ),
        ErrorCode::NotFound
    );
    assert_eq!(
        store.cursor(&p, &name("ghost"), "event:a").await.unwrap(),
        None
    );
}

async fn leases(store: &dyn FunctionStore) {
    let lease = format!("lease-{}", random_hex(6));
    let other = format!("lease-{}", random_hex(6));

    assert!(
        store.lease(&lease, "a", 1_000, 2_000).await.unwrap(),
        "free"
    );
    assert!(
        !store.lease(&lease, "b", 1_500, 2_500).await.unwrap(),
        "held by a"
    );
    assert!(
        store.lease(&lease, "a", 1_500, 3_000).await.unwrap(),
        "renewed"
    );
    // The renewal moved the end: b still waits at 2_500.
    assert!(!store.lease(&lease, "b", 2_500, 3_500).await.unwrap());
    assert!(!store.lease(&lease, "b", 2_999, 3_500).await.unwrap());
    // Expired at its end: b takes it, and a no longer has it.
    assert!(
        store.lease(&lease, "b", 3_000, 4_000).await.unwrap(),
        "expired"
    );
    assert!(!store.lease(&lease, "a", 3_100, 5_000).await.unwrap());
    assert!(store.lease(&lease, "b", 3_900, 6_000).await.unwrap());

    // Leases are independent of each other.
    assert!(store.lease(&other, "a", 3_900, 6_000).await.unwrap());
    assert!(!store.lease(&other, "b", 3_900, 6_000).await.unwrap());
}

async fn concurrent_deploys(store: &Arc<dyn FunctionStore>) {
    let p = project();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(store);
            let v = version(&p, "raced", vec![]);
            tokio::spawn(async move { store.add_version(v).await })
        })
        .collect();
    let mut got = Vec::new();
    for task in tasks {
        let stored = task.await.expect("deploy task").expect("concurrent deploy");
        got.push(stored.number);
    }
    got.sort_unstable();
    assert_eq!(got, (1..=20).collect::<Vec<u32>>(), "distinct, consecutive");
    let s = store.as_ref();
    assert_eq!(
        numbers(s, &p, "raced").await,
        (1..=20).rev().collect::<Vec<u32>>()
    );
    let raced = info(s, &p, "raced").await;
    assert_eq!((raced.active, raced.latest), (20, 20));
}

async fn concurrent_leases(store: &Arc<dyn FunctionStore>) {
    let lease = format!("lease-{}", random_hex(6));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = Arc::clone(store);
            let lease = lease.clone();
            tokio::spawn(async move {
                let holder = format!("instance-{i}");
                let held = store.lease(&lease, &holder, 1_000, 60_000).await;
                (holder, held)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (holder, held) = task.await.expect("lease task");
        if held.expect("concurrent lease") {
            winners.push(holder);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one holder: {winners:?}");
    assert!(
        store
            .lease(&lease, &winners[0], 2_000, 60_000)
            .await
            .unwrap()
    );
    assert!(!store.lease(&lease, "late", 2_000, 60_000).await.unwrap());
}

async fn forgetting_projects(store: &dyn FunctionStore) {
    let (p, q) = (project(), project());
    let mut of_p = Vec::new();
    for (function, count) in [("alpha", 2), ("beta", 1)] {
        for number in 1..=count {
            of_p.push(deploy(store, version(&p, function, vec![event("x")]), number).await);
        }
    }
    let of_q = deploy(store, version(&q, "alpha", vec![event("x")]), 1).await;
    for s in [&p, &q] {
        store
            .set_cursor(s, &name("alpha"), "event:x", 11)
            .await
            .unwrap();
        store
            .record(&invocation(s, "alpha", 1_700_000_000_000, 1))
            .await
            .unwrap();
    }

    let mut removed = store.forget_project(&p).await.expect("forget");
    let key = |v: &Version| (v.function.clone(), v.number);
    removed.sort_by_key(key);
    of_p.sort_by_key(key);
    assert_eq!(removed, of_p);
    assert!(store.functions(&p).await.unwrap().is_empty());
    assert!(store.versions(&p, &name("alpha")).await.unwrap().is_empty());
    assert_eq!(store.version(&p, &name("alpha"), 1).await.unwrap(), None);
    assert!(store.invocations(&p, &page(10)).await.unwrap().is_empty());
    assert_eq!(
        store.cursor(&p, &name("alpha"), "event:x").await.unwrap(),
        None
    );
    assert!(triggered_in(store, &p).await.is_empty());

    // The other project is untouched.
    assert_eq!(
        store.versions(&q, &name("alpha")).await.unwrap(),
        vec![of_q]
    );
    assert_eq!(store.functions(&q).await.unwrap().len(), 1);
    assert_eq!(store.invocations(&q, &page(10)).await.unwrap().len(), 1);
    assert_eq!(
        store.cursor(&q, &name("alpha"), "event:x").await.unwrap(),
        Some(11)
    );
    assert_eq!(triggered_in(store, &q).await, [("alpha".to_string(), 1)]);

    // Forgetting again finds nothing; the project can start over.
    assert!(store.forget_project(&p).await.unwrap().is_empty());
    deploy(store, version(&p, "alpha", vec![]), 1).await;
}
