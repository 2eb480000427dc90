//! The conformance suite every [`DocStore`] must pass (memory, SQLite,
//! Postgres). Each check works in projects of its own, so a shared
//! database works and the checks never see each other.

use std::ops::Bound;
use std::sync::Arc;

use serde_json::{Value, json};

use super::adapters::memory::quota_message;
use super::store::{Batch, DocStore, Expect, IndexEntry, KeyRange, Quota, Refusal, Usage, Write};
use crate::error::Error;
use crate::id::{ProjectId, random_hex};

pub async fn run(store: Arc<dyn DocStore>) {
    store.check().await.unwrap();
    collections(&*store).await;
    delete_collection(&*store).await;
    writes(&*store).await;
    bodies_round_trip(&*store).await;
    batches(&*store).await;
    unique_keys(&*store).await;
    quota(&*store).await;
    usage(&*store).await;
    scan_by_id(&*store).await;
    scan_index(&*store).await;
    get_many(&*store).await;
    build_indexes(&*store).await;
    data_keys(store.clone()).await;
    isolation(&*store).await;
    concurrent_writers(store).await;
}

fn project() -> ProjectId {
    ProjectId::new(format!("p{}", random_hex(5))).unwrap_or_else(|e| panic!("{e}"))
}

fn doc(id: &str, version: u64, fields: Value) -> Value {
    let mut doc = json!({"_id": id, "_version": version});
    if let (Some(doc), Value::Object(fields)) = (doc.as_object_mut(), fields) {
        doc.extend(fields);
    }
    doc
}

fn create(id: &str, fields: Value) -> Write {
    Write {
        id: id.into(),
        expect: Expect::Absent,
        doc: Some(doc(id, 1, fields)),
        remove: Vec::new(),
        add: Vec::new(),
    }
}

/// Replaces version `v` with version `v + 1`.
fn replace(id: &str, v: u64, fields: Value) -> Write {
    Write {
        id: id.into(),
        expect: Expect::Version(v),
        doc: Some(doc(id, v + 1, fields)),
        remove: Vec::new(),
        add: Vec::new(),
    }
}

fn delete(id: &str, v: u64) -> Write {
    Write {
        id: id.into(),
        expect: Expect::Version(v),
        doc: None,
        remove: Vec::new(),
        add: Vec::new(),
    }
}

fn entry(index: &str, key: &[u8]) -> IndexEntry {
    IndexEntry {
        index: index.into(),
        key: key.to_vec(),
    }
}

/// Index entries on a write, as the service computes them.
trait Entries {
    fn adding(self, entries: impl IntoIterator<Item = IndexEntry>) -> Write;
    fn removing(self, entries: impl IntoIterator<Item = IndexEntry>) -> Write;
}

impl Entries for Write {
    fn adding(mut self, entries: impl IntoIterator<Item = IndexEntry>) -> Write {
        self.add.extend(entries);
        self
    }

    fn removing(mut self, entries: impl IntoIterator<Item = IndexEntry>) -> Write {
        self.remove.extend(entries);
        self
    }
}

/// A batch for a collection still at its first definition.
fn batch(collection: &str, writes: Vec<Write>) -> Batch {
    Batch {
        collection: collection.into(),
        collection_version: 1,
        writes,
        quota: None,
    }
}

/// A result in a form tests can compare: `ok`, `changed:ID`,
/// `duplicate:INDEX`, `quota:MESSAGE` or `failed:CODE`.
fn outcome(result: &Result<(), Refusal>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(Refusal::Changed { id }) => format!("changed:{id}"),
        Err(Refusal::Duplicate { index }) => format!("duplicate:{index}"),
        Err(Refusal::Quota(message)) => format!("quota:{message}"),
        Err(Refusal::Stale) => "stale".into(),
        Err(Refusal::Failed(e)) => format!("failed:{}", e.code()),
    }
}

async fn commit(store: &dyn DocStore, project: &ProjectId, batches: Vec<Batch>) -> Vec<String> {
    let results = store.commit(project, &batches).await;
    assert_eq!(results.len(), batches.len(), "one result per batch");
    results.iter().map(outcome).collect()
}

/// Commits one batch: its outcome.
async fn commit_one(store: &dyn DocStore, project: &ProjectId, batch: Batch) -> String {
    commit(store, project, vec![batch]).await.remove(0)
}

async fn new_collection(store: &dyn DocStore, project: &ProjectId, name: &str) {
    let result = store
        .put_collection(
            project,
            name,
            &json!({"name": name}),
            Expect::Absent,
            &[],
            None,
        )
        .await;
    assert_eq!(outcome(&result), "ok", "creating collection {name}");
}

fn ids(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| d["_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn all_ids(store: &dyn DocStore, project: &ProjectId, collection: &str) -> Vec<String> {
    ids(&store.scan(project, collection, None, 10_000).await.unwrap())
}

/// (key, document id) of an index, in key order.
async fn index(
    store: &dyn DocStore,
    project: &ProjectId,
    collection: &str,
    name: &str,
) -> Vec<(Vec<u8>, String)> {
    let all = KeyRange {
        lower: Bound::Unbounded,
        upper: Bound::Unbounded,
        reverse: false,
    };
    store
        .scan_index(project, collection, name, &all, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(key, d)| (key, d["_id"].as_str().unwrap_or_default().to_string()))
        .collect()
}

/// Usage as the memory store counts it: documents and compact JSON bytes.
fn usage_of(docs: &[Value]) -> Usage {
    Usage {
        documents: docs.len() as u64,
        bytes: docs
            .iter()
            .map(|d| serde_json::to_vec(d).unwrap().len() as u64)
            .sum(),
    }
}

async fn collections(store: &dyn DocStore) {
    let p = project();
    assert!(store.collection(&p, "c").await.unwrap().is_none());
    assert!(store.collections(&p).await.unwrap().is_empty());

    new_collection(store, &p, "c").await;
    let again = store
        .put_collection(&p, "c", &json!({"other": 1}), Expect::Absent, &[], None)
        .await;
    assert_eq!(outcome(&again), "changed:c");
    let stored = store.collection(&p, "c").await.unwrap().expect("stored");
    assert_eq!(
        (stored.name.as_str(), &stored.definition, stored.version),
        ("c", &json!({"name": "c"}), 1),
        "created at version 1; the refused create changed nothing"
    );

    let updated = json!({"name": "c", "indexes": [{"fields": ["a", "b"]}], "n": 1.5});
    let result = store
        .put_collection(&p, "c", &updated, Expect::Version(1), &[], None)
        .await;
    assert_eq!(outcome(&result), "ok");
    let stale = store
        .put_collection(&p, "c", &json!({}), Expect::Version(1), &[], None)
        .await;
    assert_eq!(outcome(&stale), "changed:c");
    let missing = store
        .put_collection(&p, "nope", &json!({}), Expect::Version(1), &[], None)
        .await;
    assert_eq!(outcome(&missing), "changed:nope");
    assert!(store.collection(&p, "nope").await.unwrap().is_none());
    let stored = store.collection(&p, "c").await.unwrap().expect("stored");
    assert_eq!((&stored.definition, stored.version), (&updated, 2));

    // Listed by name in byte order: uppercase before lowercase.
    for name in ["b", "B", "a-1", "a_1", "a.1", "A"] {
        new_collection(store, &p, name).await;
    }
    let names: Vec<String> = store
        .collections(&p)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["A", "B", "a-1", "a.1", "a_1", "b", "c"]);
}

async fn delete_collection(store: &dyn DocStore) {
    let p = project();
    new_collection(store, &p, "gone").await;
    new_collection(store, &p, "kept").await;
    let gone = vec![
        create("a", json!({"x": 1})).adding([entry("i", b"k1")]),
        create("b", json!({"x": "two"})).adding([entry("i", b"k2")]),
    ];
    let kept = vec![create("a", json!({"y": [1, 2, 3]})).adding([entry("i", b"k1")])];
    let kept_docs: Vec<Value> = kept.iter().filter_map(|w| w.doc.clone()).collect();
    let all: Vec<Value> = gone
        .iter()
        .chain(&kept)
        .filter_map(|w| w.doc.clone())
        .collect();
    let results = commit(store, &p, vec![batch("gone", gone), batch("kept", kept)]).await;
    assert_eq!(results, ["ok", "ok"]);
    assert_eq!(store.usage(&p).await.unwrap(), usage_of(&all));

    assert!(store.delete_collection(&p, "gone").await.unwrap());
    assert!(store.collection(&p, "gone").await.unwrap().is_none());
    assert!(store.get(&p, "gone", "a").await.unwrap().is_none());
    assert!(all_ids(store, &p, "gone").await.is_empty());
    assert!(index(store, &p, "gone", "i").await.is_empty());
    assert_eq!(
        store.usage(&p).await.unwrap(),
        usage_of(&kept_docs),
        "the collection's documents leave the usage"
    );
    assert!(!store.delete_collection(&p, "gone").await.unwrap());
    assert!(!store.delete_collection(&p, "never").await.unwrap());

    // The other collection is whole.
    assert_eq!(all_ids(store, &p, "kept").await, ["a"]);
    assert_eq!(
        index(store, &p, "kept", "i").await,
        [(b"k1".to_vec(), "a".into())]
    );

    // A collection created again under the name starts empty.
    new_collection(store, &p, "gone").await;
    let stored = store.collection(&p, "gone").await.unwrap().expect("stored");
    assert_eq!(stored.version, 1);
    assert!(all_ids(store, &p, "gone").await.is_empty());
    assert!(index(store, &p, "gone", "i").await.is_empty());
    let reused = create("c", json!({})).adding([entry("i", b"k1")]);
    assert_eq!(
        commit_one(store, &p, batch("gone", vec![reused])).await,
        "ok"
    );
}

async fn writes(store: &dyn DocStore) {
    let p = project();
    new_collection(store, &p, "c").await;
    assert!(store.get(&p, "c", "x").await.unwrap().is_none());
    assert!(store.get(&p, "missing", "x").await.unwrap().is_none());

    let first = create("x", json!({"n": 1}));
    let v1 = first.doc.clone();
    assert_eq!(commit_one(store, &p, batch("c", vec![first])).await, "ok");
    assert_eq!(store.get(&p, "c", "x").await.unwrap(), v1);

    // Refused writes leave the stored document as it was.
    let refused = [
        (create("x", json!({"n": 9})), "changed:x"),
        (replace("x", 2, json!({"n": 9})), "changed:x"),
        (delete("x", 2), "changed:x"),
        (replace("y", 1, json!({})), "changed:y"),
        (delete("y", 1), "changed:y"),
    ];
    for (write, expected) in refused {
        assert_eq!(
            commit_one(store, &p, batch("c", vec![write])).await,
            expected
        );
        assert_eq!(store.get(&p, "c", "x").await.unwrap(), v1);
        assert!(store.get(&p, "c", "y").await.unwrap().is_none());
    }

    let second = replace("x", 1, json!({"n": 2, "tags": ["a"]}));
    let v2 = second.doc.clone();
    assert_eq!(commit_one(store, &p, batch("c", vec![second])).await, "ok");
    assert_eq!(store.get(&p, "c", "x").await.unwrap(), v2);
    assert_eq!(
        commit_one(store, &p, batch("c", vec![delete("x", 1)])).await,
        "changed:x"
    );
    assert_eq!(
        commit_one(store, &p, batch("c", vec![delete("x", 2)])).await,
        "ok"
    );
    assert!(store.get(&p, "c", "x").await.unwrap().is_none());
    // Deleted, the id can be created again.
    assert_eq!(
        commit_one(store, &p, batch("c", vec![create("x", json!({"n": 3}))])).await,
        "ok"
    );

    // A version mismatch refuses the batch before any duplicate key.
    let w = vec![
        create("d1", json!({})).adding([entry("u", b"k"), entry("u", b"k")]),
        replace("nope", 1, json!({})),
    ];
    assert_eq!(commit_one(store, &p, batch("c", w)).await, "changed:nope");

    // No collection: the store fails the batch.
    assert_eq!(
        commit_one(store, &p, batch("missing", vec![create("a", json!({}))])).await,
        "failed:not_found"
    );
    assert!(store.commit(&p, &[]).await.is_empty());
    assert_eq!(
        store.usage(&p).await.unwrap(),
        usage_of(&[doc("x", 1, json!({"n": 3}))])
    );
}

async fn bodies_round_trip(store: &dyn DocStore) {
    let p = project();
    new_collection(store, &p, "c").await;
    let fields = json!({
        "nul": "a\u{0}b",
        "unicode": "héllo 🌍 \u{7f}\"\\",
        "big": 18_446_744_073_709_551_615u64,
        "negative": -9_007_199_254_740_993i64,
        "floats": [0.1, 1e16, -2.5e-3, 5.0],
        "nested": {"z": {"y": [null, true, false, {}, []]}, "a": ""},
        "": "empty name",
    });
    let write = create("doc", fields);
    let expected = write.doc.clone();
    assert_eq!(commit_one(store, &p, batch("c", vec![write])).await, "ok");
    assert_eq!(
        store.get(&p, "c", "doc").await.unwrap(),
        expected,
        "documents come back exactly as written"
    );
    let expected = expected.unwrap_or_default();
    assert_eq!(store.usage(&p).await.unwrap(), usage_of(&[expected]));
}

async fn batches(store: &dyn DocStore) {
    let p = project();
    new_collection(store, &p, "c").await;
    assert_eq!(
        commit_one(store, &p, batch("c", vec![create("x", json!({}))])).await,
        "ok"
    );

    let results = commit(
        store,
        &p,
        vec![
            batch("c", vec![create("a1", json!({})), create("a2", json!({}))]),
            // One stale write refuses its whole batch, the good one too.
            batch("c", vec![create("b1", json!({})), create("x", json!({}))]),
            batch("missing", vec![create("m", json!({}))]),
            batch("c", vec![create("c1", json!({}))]),
            // Later batches see the earlier ones of the same call.
            batch("c", vec![replace("a1", 1, json!({"v": 2}))]),
            batch("c", vec![create("a2", json!({}))]),
            batch(
                "c",
                vec![replace("a1", 2, json!({"v": 3})), delete("c1", 1)],
            ),
        ],
    )
    .await;
    assert_eq!(
        results,
        [
            "ok",
            "changed:x",
            "failed:not_found",
            "ok",
            "ok",
            "changed:a2",
            "ok"
        ]
    );
    assert_eq!(all_ids(store, &p, "c").await, ["a1", "a2", "x"]);
    let a1 = store.get(&p, "c", "a1").await.unwrap().expect("a1");
    assert_eq!(a1, doc("a1", 3, json!({"v": 3})));
    let docs = store.scan(&p, "c", None, 100).await.unwrap();
    assert_eq!(store.usage(&p).await.unwrap(), usage_of(&docs));
}

async fn unique_keys(store: &dyn DocStore) {
    let p = project();
    new_collection(store, &p, "c").await;
    let (ann, amy, cat) = (
        entry("email", b"ann"),
        entry("email", b"amy"),
        entry("email", b"cat"),
    );

    let a = create("a", json!({"email": "ann"})).adding([ann.clone()]);
    assert_eq!(commit_one(store, &p, batch("c", vec![a])).await, "ok");

    // Against a stored key.
    let b = create("b", json!({"email": "ann"})).adding([ann.clone()]);
    assert_eq!(
        commit_one(store, &p, batch("c", vec![b])).await,
        "duplicate:email"
    );
    // Within one batch.
    let twice = vec![
        create("c", json!({})).adding([cat.clone()]),
        create("d", json!({})).adding([cat.clone()]),
    ];
    assert_eq!(
        commit_one(store, &p, batch("c", twice)).await,
        "duplicate:email"
    );
    assert_eq!(all_ids(store, &p, "c").await, ["a"]);
    assert_eq!(
        index(store, &p, "c", "email").await,
        [(b"ann".to_vec(), "a".into())]
    );

    // A key freed in a batch can be taken in the same batch.
    let moved = vec![
        replace("a", 1, json!({"email": "amy"}))
            .removing([ann.clone()])
            .adding([amy.clone()]),
        create("e", json!({"email": "ann"})).adding([ann.clone()]),
    ];
    assert_eq!(commit_one(store, &p, batch("c", moved)).await, "ok");
    assert_eq!(
        index(store, &p, "c", "email").await,
        [(b"amy".to_vec(), "a".into()), (b"ann".to_vec(), "e".into())]
    );

    // Or by a later batch of the same call; a refused batch frees nothing.
    let results = commit(
        store,
        &p,
        vec![
            batch("c", vec![delete("e", 1).removing([ann.clone()])]),
            batch("c", vec![create("f", json!({})).adding([ann.clone()])]),
            batch(
                "c",
                vec![
                    delete("f", 7).removing([ann.clone()]),
                    create("g", json!({})),
                ],
            ),
            batch("c", vec![create("h", json!({})).adding([ann.clone()])]),
        ],
    )
    .await;
    assert_eq!(results, ["ok", "ok", "changed:f", "duplicate:email"]);
    assert_eq!(
        index(store, &p, "c", "email").await,
        [(b"amy".to_vec(), "a".into()), (b"ann".to_vec(), "f".into())]
    );

    // Removed and added again by one write: still there.
    let same = replace("a", 2, json!({"email": "amy", "n": 1}))
        .removing([amy.clone()])
        .adding([amy.clone()]);
    assert_eq!(commit_one(store, &p, batch("c", vec![same])).await, "ok");
    // Added then removed within one call: gone.
    let results = commit(
        store,
        &p,
        vec![
            batch("c", vec![create("t", json!({})).adding([cat.clone()])]),
            batch("c", vec![delete("t", 1).removing([cat.clone()])]),
        ],
    )
    .await;
    assert_eq!(results, ["ok", "ok"]);
    assert_eq!(
        index(store, &p, "c", "email").await,
        [(b"amy".to_vec(), "a".into()), (b"ann".to_vec(), "f".into())]
    );

    // Keys are per index and per collection.
    new_collection(store, &p, "other").await;
    let elsewhere = vec![create("x", json!({})).adding([ann.clone(), entry("email2", b"ann")])];
    assert_eq!(commit_one(store, &p, batch("other", elsewhere)).await, "ok");
}

async fn quota(store: &dyn DocStore) {
    let p = project();
    new_collection(store, &p, "c").await;
    new_collection(store, &p, "d").await;
    let small = json!({"s": "x"});
    let big = json!({"s": "x".repeat(100)});
    let limited = |writes: Vec<Write>, max_documents: u64, max_bytes: u64| Batch {
        collection: "c".into(),
        collection_version: 1,
        writes,
        quota: Some(Quota {
            max_documents,
            max_bytes,
        }),
    };

    let results = commit(
        store,
        &p,
        vec![
            limited(vec![create("a", small.clone())], 2, 10_000),
            batch("d", vec![create("b", small.clone())]),
        ],
    )
    .await;
    assert_eq!(results, ["ok", "ok"]);
    let before = store.usage(&p).await.unwrap();
    assert_eq!(before.documents, 2, "usage counts every collection");

    // A third document is over: refused with the memory store's wording.
    let third = create("c", small.clone());
    let after = Usage {
        documents: 3,
        bytes: before.bytes
            + serde_json::to_vec(third.doc.as_ref().unwrap())
                .unwrap()
                .len() as u64,
    };
    let refused = commit_one(store, &p, limited(vec![third], 2, 10_000)).await;
    let limits = Quota {
        max_documents: 2,
        max_bytes: 10_000,
    };
    assert_eq!(refused, format!("quota:{}", quota_message(after, limits)));
    assert_eq!(store.usage(&p).await.unwrap(), before);
    assert!(store.get(&p, "c", "c").await.unwrap().is_none());

    // Bytes count too: a bigger body over the byte quota is refused.
    let grow = commit_one(
        store,
        &p,
        limited(vec![replace("a", 1, big.clone())], 10, before.bytes),
    )
    .await;
    assert!(grow.starts_with("quota:"), "{grow}");
    // While over, writes that do not grow the project still pass.
    let same_size = replace("a", 1, json!({"s": "y"}));
    assert_eq!(
        commit_one(store, &p, limited(vec![same_size], 1, 1)).await,
        "ok"
    );
    let shrink = replace("a", 2, json!({}));
    assert_eq!(
        commit_one(store, &p, limited(vec![shrink], 1, 1)).await,
        "ok"
    );
    assert_eq!(
        commit_one(store, &p, limited(vec![delete("a", 3)], 0, 0)).await,
        "ok"
    );
    // An exact fit is not over.
    let usage = store.usage(&p).await.unwrap();
    let fit = create("e", small.clone());
    let size = serde_json::to_vec(fit.doc.as_ref().unwrap()).unwrap().len() as u64;
    let ok = commit_one(
        store,
        &p,
        limited(vec![fit], usage.documents + 1, usage.bytes + size),
    )
    .await;
    assert_eq!(ok, "ok");
    // A batch that grows one way and shrinks the other still grows.
    let mixed = vec![
        delete("e", 1),
        create("f", big.clone()),
        create("g", small.clone()),
    ];
    let usage = store.usage(&p).await.unwrap();
    let refused = commit_one(store, &p, limited(mixed, usage.documents + 5, usage.bytes)).await;
    assert!(refused.starts_with("quota:"), "{refused}");
}

async fn usage(store: &dyn DocStore) {
    let p = project();
    assert_eq!(store.usage(&p).await.unwrap(), Usage::default());
    new_collection(store, &p, "c").await;
    new_collection(store, &p, "d").await;
    assert_eq!(store.usage(&p).await.unwrap(), Usage::default());
    let results = commit(
        store,
        &p,
        vec![
            batch(
                "c",
                vec![create("a", json!({"n": 1})), create("b", json!({"s": "é"}))],
            ),
            batch(
                "d",
                vec![create("a", json!({"deep": {"list": [1, 2, {"x": null}]}}))],
            ),
        ],
    )
    .await;
    assert_eq!(results, ["ok", "ok"]);
    let mut docs = store.scan(&p, "c", None, 100).await.unwrap();
    docs.extend(store.scan(&p, "d", None, 100).await.unwrap());
    assert_eq!(store.usage(&p).await.unwrap(), usage_of(&docs));

    let grown = replace("a", 1, json!({"n": 1, "more": "x".repeat(50)}));
    let shrunk = replace("b", 1, json!({}));
    let results = commit(
        store,
        &p,
        vec![
            batch("c", vec![grown, shrunk]),
            batch("d", vec![delete("a", 1)]),
        ],
    )
    .await;
    assert_eq!(results, ["ok", "ok"]);
    let docs = store.scan(&p, "c", None, 100).await.unwrap();
    assert_eq!(store.usage(&p).await.unwrap(), usage_of(&docs));
}

async fn scan_by_id(store: &dyn DocStore) {
    let p = project();
    new_collection(store, &p, "c").await;
    let names = [
        "b", "B", "a", "0", "9", "_x", "-y", ".z", "a.b", "a-b", "a_b", "Z9", "z", "aa", "A", "a0",
    ];
    let writes = names.iter().map(|id| create(id, json!({}))).collect();
    assert_eq!(commit_one(store, &p, batch("c", writes)).await, "ok");
    let mut sorted: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    sorted.sort();
    assert_eq!(all_ids(store, &p, "c").await, sorted, "ids in byte order");

    // Pages resume after the last id.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.scan(&p, "c", after.as_deref(), 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        paged.extend(ids(&page));
        after = paged.last().cloned();
    }
    assert_eq!(paged, sorted);
    // After an id that is not stored: from the next one.
    assert_eq!(
        ids(&store.scan(&p, "c", Some("a."), 2).await.unwrap()),
        ["a.b", "a0"]
    );
    assert!(
        store
            .scan(&p, "c", Some("zz"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.scan(&p, "c", None, 0).await.unwrap().is_empty());
    assert!(store.scan(&p, "none", None, 10).await.unwrap().is_empty());
}

/// Whether `key` lies within `lower` and `upper`.
fn within(key: &[u8], lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> bool {
    let above = match lower {
        Bound::Included(l) => key >= l.as_slice(),
        Bound::Excluded(l) => key > l.as_slice(),
        Bound::Unbounded => true,
    };
    let below = match upper {
        Bound::Included(u) => key <= u.as_slice(),
        Bound::Excluded(u) => key < u.as_slice(),
        Bound::Unbounded => true,
    };
    above && below
}

async fn scan_index(store: &dyn DocStore) {
    let p = project();
    new_collection(store, &p, "c").await;
    let keys: Vec<Vec<u8>> = vec![
        vec![0x00],
        vec![0x00, 0x00],
        vec![0x00, 0xff],
        vec![0x01],
        vec![0x06, b'a', 0x00, 0x01],
        vec![0x06, b'a', 0x00, 0xff, 0x00, 0x01],
        vec![0x06, b'b'],
        vec![0x7f],
        vec![0x80],
        vec![0xfe, 0xff],
        vec![0xff],
        vec![0xff, 0x00],
        vec![0xff, 0xff],
    ];
    // Document i has key i in index "n" and another key in "m".
    let writes: Vec<Write> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            create(&format!("d{i:02}"), json!({"i": i}))
                .adding([entry("n", key), entry("m", &[0x42, i as u8])])
        })
        .collect();
    assert_eq!(commit_one(store, &p, batch("c", writes)).await, "ok");
    // Two documents go: one with its entry, one leaving it behind (a
    // dangling entry is skipped, and does not count towards the limit).
    let gone = vec![
        delete("d03", 1).removing([entry("n", &keys[3])]),
        delete("d07", 1),
    ];
    assert_eq!(commit_one(store, &p, batch("c", gone)).await, "ok");
    let mut live: Vec<(Vec<u8>, String)> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 7)
        .map(|(i, key)| (key.clone(), format!("d{i:02}")))
        .collect();
    live.sort();

    let probes: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x00],
        vec![0x00, 0x01],
        vec![0x06, b'a', 0x00],
        vec![0x06, b'a', 0x00, 0x01],
        vec![0x7f],
        vec![0xff],
        vec![0xff, 0xff, 0xff],
    ];
    let mut bounds = vec![Bound::Unbounded];
    for probe in &probes {
        bounds.push(Bound::Included(probe.clone()));
        bounds.push(Bound::Excluded(probe.clone()));
    }
    for lower in &bounds {
        for upper in &bounds {
            for reverse in [false, true] {
                for limit in [2, 100] {
                    let range = KeyRange {
                        lower: lower.clone(),
                        upper: upper.clone(),
                        reverse,
                    };
                    let mut expected: Vec<(Vec<u8>, String)> = live
                        .iter()
                        .filter(|(key, _)| within(key, lower, upper))
                        .cloned()
                        .collect();
                    if reverse {
                        expected.reverse();
                    }
                    expected.truncate(limit);
                    let found: Vec<(Vec<u8>, String)> = store
                        .scan_index(&p, "c", "n", &range, limit)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|(key, d)| (key, d["_id"].as_str().unwrap_or_default().to_string()))
                        .collect();
                    assert_eq!(found, expected, "{range:?} limit {limit}");
                }
            }
        }
    }
    // The documents come whole.
    let one = KeyRange {
        lower: Bound::Included(keys[0].clone()),
        upper: Bound::Included(keys[0].clone()),
        reverse: false,
    };
    let found = store.scan_index(&p, "c", "n", &one, 10).await.unwrap();
    assert_eq!(found, [(keys[0].clone(), doc("d00", 1, json!({"i": 0})))]);
    // Other indexes, collections and projects are apart.
    assert_eq!(index(store, &p, "c", "m").await.len(), keys.len() - 2);
    assert!(index(store, &p, "c", "none").await.is_empty());
    assert!(index(store, &p, "other", "n").await.is_empty());
    assert!(index(store, &project(), "c", "n").await.is_empty());
    let all = KeyRange {
        lower: Bound::Unbounded,
        upper: Bound::Unbounded,
        reverse: true,
    };
    assert!(
        store
            .scan_index(&p, "c", "n", &all, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn get_many(store: &dyn DocStore) {
    let p = project();
    new_collection(store, &p, "c").await;
    let writes = ["c", "a", "B", "b"]
        .iter()
        .map(|id| create(id, json!({})))
        .collect();
    assert_eq!(commit_one(store, &p, batch("c", writes)).await, "ok");
    let wanted: Vec<String> = ["c", "a", "missing", "B", "a"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let found = store.get_many(&p, "c", &wanted).await.unwrap();
    assert_eq!(
        ids(&found),
        ["B", "a", "c"],
        "in id order, missing left out, once each"
    );
    assert_eq!(found[0], doc("B", 1, json!({})));
    assert!(store.get_many(&p, "c", &[]).await.unwrap().is_empty());
    assert!(
        store
            .get_many(&p, "none", &wanted)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn build_indexes(store: &dyn DocStore) {
    let p = project();
    new_collection(store, &p, "c").await;
    // More documents than a page of the SQL stores' build.
    let writes: Vec<Write> = (0..300)
        .map(|i| {
            create(&format!("u{i:03}"), json!({"email": format!("e{i:03}")}))
                .adding([entry("old", format!("o{i:03}").as_bytes())])
        })
        .collect();
    assert_eq!(commit_one(store, &p, batch("c", writes)).await, "ok");
    let by_email = |doc: &Value| -> Result<Vec<IndexEntry>, Error> {
        let email = doc["email"].as_str().unwrap_or_default();
        Ok(vec![entry("email", email.as_bytes())])
    };

    let v2 = json!({"name": "c", "indexes": ["email"]});
    let stale = store
        .put_collection(
            &p,
            "c",
            &v2,
            Expect::Version(5),
            &["old".into()],
            Some(&by_email),
        )
        .await;
    assert_eq!(outcome(&stale), "changed:c");
    assert_eq!(index(store, &p, "c", "old").await.len(), 300);
    assert!(index(store, &p, "c", "email").await.is_empty());

    let result = store
        .put_collection(
            &p,
            "c",
            &v2,
            Expect::Version(1),
            &["old".into()],
            Some(&by_email),
        )
        .await;
    assert_eq!(outcome(&result), "ok");
    assert!(index(store, &p, "c", "old").await.is_empty(), "dropped");
    let built = index(store, &p, "c", "email").await;
    let expected: Vec<(Vec<u8>, String)> = (0..300)
        .map(|i| (format!("e{i:03}").into_bytes(), format!("u{i:03}")))
        .collect();
    assert_eq!(built, expected, "built for every stored document");
    assert_eq!(
        store.collection(&p, "c").await.unwrap().expect("c").version,
        2
    );
    // A batch prepared under the old definition is refused as stale
    // (its entries lack the new index); under the new one, new writes
    // keep the built index unique.
    let dup = create("new", json!({})).adding([entry("email", b"e007")]);
    assert_eq!(
        commit_one(store, &p, batch("c", vec![dup.clone()])).await,
        "stale"
    );
    let at_v2 = |writes| Batch {
        collection_version: 2,
        ..batch("c", writes)
    };
    assert_eq!(
        commit_one(store, &p, at_v2(vec![dup])).await,
        "duplicate:email"
    );

    // A duplicate refuses the whole update: definition, dropped and built
    // entries stay as they were.
    let in_group = vec![
        replace("u001", 1, json!({"email": "e001", "group": "g"})),
        replace("u002", 1, json!({"email": "e002", "group": "g"})),
    ];
    assert_eq!(commit_one(store, &p, at_v2(in_group)).await, "ok");
    let by_group = |doc: &Value| -> Result<Vec<IndexEntry>, Error> {
        Ok(match doc["group"].as_str() {
            Some(group) => vec![entry("group", group.as_bytes())],
            None => Vec::new(),
        })
    };
    let v3 = json!({"name": "c", "indexes": ["group"]});
    let refused = store
        .put_collection(
            &p,
            "c",
            &v3,
            Expect::Version(2),
            &["email".into()],
            Some(&by_group),
        )
        .await;
    assert_eq!(outcome(&refused), "duplicate:group");
    let stored = store.collection(&p, "c").await.unwrap().expect("c");
    assert_eq!((&stored.definition, stored.version), (&v2, 2));
    assert_eq!(
        index(store, &p, "c", "email").await.len(),
        300,
        "not dropped"
    );
    assert!(
        index(store, &p, "c", "group").await.is_empty(),
        "nothing built"
    );

    // A failing computation refuses the update too.
    let failing = |_: &Value| -> Result<Vec<IndexEntry>, Error> { Err(Error::invalid("no")) };
    let failed = store
        .put_collection(&p, "c", &v3, Expect::Version(2), &[], Some(&failing))
        .await;
    assert_eq!(outcome(&failed), "failed:invalid_input");
    assert_eq!(
        store.collection(&p, "c").await.unwrap().expect("c").version,
        2
    );

    // Building on an empty collection, or with nothing to build, is fine.
    new_collection(store, &p, "empty").await;
    let result = store
        .put_collection(
            &p,
            "empty",
            &v3,
            Expect::Version(1),
            &["x".into()],
            Some(&by_group),
        )
        .await;
    assert_eq!(outcome(&result), "ok");
    assert_eq!(
        store
            .collection(&p, "empty")
            .await
            .unwrap()
            .expect("empty")
            .version,
        2
    );
}

async fn data_keys(store: Arc<dyn DocStore>) {
    let (a, b) = (project(), project());
    assert!(store.data_key(&a).await.unwrap().is_none());
    assert_eq!(store.put_data_key(&a, b"first").await.unwrap(), b"first");
    assert_eq!(store.put_data_key(&a, b"second").await.unwrap(), b"first");
    assert_eq!(
        store.data_key(&a).await.unwrap().as_deref(),
        Some(&b"first"[..])
    );
    assert!(store.data_key(&b).await.unwrap().is_none());

    // Racing writers all get the one key stored.
    let racing = project();
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            let store = store.clone();
            let racing = racing.clone();
            tokio::spawn(async move { store.put_data_key(&racing, &[i; 40]).await.unwrap() })
        })
        .collect();
    let mut keys = Vec::new();
    for task in tasks {
        keys.push(task.await.unwrap());
    }
    let stored = store.data_key(&racing).await.unwrap().expect("stored");
    assert!(keys.iter().all(|k| *k == stored), "first writer wins");
}

async fn isolation(store: &dyn DocStore) {
    let (a, b) = (project(), project());
    for p in [&a, &b] {
        new_collection(store, p, "c").await;
    }
    let in_a = create("x", json!({"owner": "a"})).adding([entry("u", b"k")]);
    let in_b = create("x", json!({"owner": "b", "more": true})).adding([entry("u", b"k")]);
    let doc_b = in_b.doc.clone();
    assert_eq!(commit_one(store, &a, batch("c", vec![in_a])).await, "ok");
    assert_eq!(
        commit_one(store, &b, batch("c", vec![in_b])).await,
        "ok",
        "the same id and key in another project are free"
    );
    assert_eq!(store.get(&b, "c", "x").await.unwrap(), doc_b);
    assert_eq!(
        index(store, &b, "c", "u").await,
        [(b"k".to_vec(), "x".into())]
    );
    let wanted = ["x".to_string()];
    assert_eq!(
        store.get_many(&b, "c", &wanted).await.unwrap(),
        [doc_b.clone().unwrap()]
    );

    assert_eq!(
        commit_one(
            store,
            &a,
            batch("c", vec![replace("x", 1, json!({"owner": "a2"}))])
        )
        .await,
        "ok"
    );
    assert!(store.delete_collection(&a, "c").await.unwrap());
    assert_eq!(store.usage(&a).await.unwrap(), Usage::default());
    assert_eq!(store.get(&b, "c", "x").await.unwrap(), doc_b);
    assert_eq!(all_ids(store, &b, "c").await, ["x"]);
    assert_eq!(store.usage(&b).await.unwrap(), usage_of(&[doc_b.unwrap()]));
    assert!(store.collection(&b, "c").await.unwrap().is_some());
    assert!(store.collections(&a).await.unwrap().is_empty());
}

/// Eight writers on one project: each adds documents of its own and bumps
/// a shared counter with compare-and-set, retrying on `Changed`.
async fn concurrent_writers(store: Arc<dyn DocStore>) {
    const WRITERS: usize = 8;
    const ROUNDS: u64 = 10;
    let p = project();
    new_collection(&*store, &p, "c").await;
    let counter = create("counter", json!({"n": 0})).adding([entry("n", &[0])]);
    assert_eq!(
        commit_one(&*store, &p, batch("c", vec![counter])).await,
        "ok"
    );

    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            let p = p.clone();
            tokio::spawn(async move {
                let mut attempts = 0;
                for round in 0..ROUNDS {
                    let own = create(&format!("w{w}-{round}"), json!({"w": w}))
                        .adding([entry("own", format!("w{w}-{round}").as_bytes())]);
                    assert_eq!(commit_one(&*store, &p, batch("c", vec![own])).await, "ok");
                    loop {
                        attempts += 1;
                        assert!(attempts < 10_000, "writer {w} starves");
                        let stored = store
                            .get(&p, "c", "counter")
                            .await
                            .unwrap()
                            .expect("counter");
                        let v = stored["_version"].as_u64().unwrap();
                        let n = stored["n"].as_u64().unwrap();
                        let bump = replace("counter", v, json!({"n": n + 1}))
                            .removing([entry("n", &[n as u8])])
                            .adding([entry("n", &[(n + 1) as u8])]);
                        match commit_one(&*store, &p, batch("c", vec![bump]))
                            .await
                            .as_str()
                        {
                            "ok" => break,
                            "changed:counter" => continue,
                            other => panic!("writer {w}: {other}"),
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let total = WRITERS as u64 * ROUNDS;
    let counter = store
        .get(&p, "c", "counter")
        .await
        .unwrap()
        .expect("counter");
    assert_eq!(counter["n"], json!(total), "no update lost");
    assert_eq!(counter["_version"], json!(total + 1));
    assert_eq!(
        index(&*store, &p, "c", "n").await,
        [(vec![total as u8], "counter".into())]
    );
    assert_eq!(index(&*store, &p, "c", "own").await.len(), total as usize);
    let docs = store.scan(&p, "c", None, 10_000).await.unwrap();
    assert_eq!(docs.len() as u64, total + 1);
    assert_eq!(
        store.usage(&p).await.unwrap(),
        usage_of(&docs),
        "usage exact"
    );
}
