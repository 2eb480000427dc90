//! The Bundoc service end to end on the memory store.

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::adapters::MemoryDocStore;
use super::store::{DocStore, Quota};
use super::{Bundoc, Change, DocsLimits, DocsMetrics, WriteOp};
use crate::ErrorCode;
use crate::auth::{Principal, PrincipalKind, Rights};
use crate::events::adapters::BusConfig;
use crate::events::adapters::memory::MemoryBus;
use crate::events::{Delivery, EventLimits, EventMetrics, Events};
use crate::id::ProjectId;
use crate::kms::adapters::memory::MemoryKms;
use crate::kms::master::MasterKey;
use crate::kms::{Kms, KmsLimits, KmsMetrics, LocalKeys};

const CITIES: [&str; 4] = ["Oslo", "Bergen", "Tromsø", "Bodø"];

fn project(name: &str) -> ProjectId {
    ProjectId::new(name).unwrap()
}

fn who(p: &str, kind: PrincipalKind, rights: Rights, subject: &str) -> Principal {
    Principal {
        subject: subject.into(),
        kind,
        project: project(p),
        rights,
    }
}

fn admin(p: &str) -> Principal {
    who(p, PrincipalKind::SecretKey, Rights::ALL, "sk")
}

fn end_user(p: &str, uid: &str) -> Principal {
    who(p, PrincipalKind::EndUser, Rights::NONE, uid)
}

fn events() -> Events {
    let metrics = Arc::new(EventMetrics::unregistered());
    Events::new(
        Arc::new(MemoryBus::new(BusConfig::default(), metrics.clone())),
        EventLimits::default(),
        metrics,
    )
}

fn kms_keys() -> Arc<LocalKeys> {
    let kms = Kms::new(
        Arc::new(MemoryKms::new()),
        Arc::new(MasterKey::parse(&"ab".repeat(32)).unwrap()),
        KmsLimits::default(),
        Arc::new(KmsMetrics::unregistered()),
    );
    Arc::new(LocalKeys::new(kms, "bundoc"))
}

fn bundoc_with(limits: DocsLimits) -> (Bundoc, Arc<MemoryDocStore>) {
    let store = Arc::new(MemoryDocStore::new());
    let docs = Bundoc::new(
        store.clone(),
        events(),
        Some(kms_keys()),
        limits,
        Arc::new(DocsMetrics::unregistered()),
    );
    (docs, store)
}

fn bundoc() -> Bundoc {
    bundoc_with(DocsLimits::default()).0
}

fn code<T: std::fmt::Debug>(r: Result<T, crate::Error>) -> ErrorCode {
    r.unwrap_err().code()
}

async fn orders(docs: &Bundoc, p: &str, extra: Value) -> Value {
    let mut body = json!({"name": "orders", "indexes": [
        {"fields": ["city"]}, {"fields": ["n"]}, {"fields": ["city", "k"]},
    ]});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    docs.create_collection(&admin(p), &project(p), &body)
        .await
        .unwrap()
}

#[tokio::test]
async fn documents_get_system_fields_versions_and_merge_patches() {
    let docs = bundoc();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    orders(&docs, "alpha", json!({})).await;
    let created = docs
        .create(
            &a,
            &alpha,
            "orders",
            json!({"city": "Oslo", "n": 1, "address": {"zip": "0150", "floor": 2}}),
        )
        .await
        .unwrap();
    let id = created["_id"].as_str().unwrap().to_string();
    assert_eq!(created["_version"], json!(1));
    assert!(created["_created"].as_u64().unwrap() > 0);

    let patched = docs
        .patch(
            &a,
            &alpha,
            "orders",
            &id,
            json!({"address": {"floor": null}, "n": 2}),
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!(patched["address"], json!({"zip": "0150"}));
    assert_eq!(patched["_version"], json!(2));
    assert_eq!(patched["_created"], created["_created"]);

    // A stale version is a conflict and changes nothing.
    let stale = docs
        .replace(
            &a,
            &alpha,
            "orders",
            &id,
            json!({"city": "Bergen"}),
            Some(1),
        )
        .await;
    assert_eq!(code(stale), ErrorCode::Conflict);
    assert_eq!(docs.get(&a, &alpha, "orders", &id).await.unwrap(), patched);

    // Given ids: a second create is refused; replace upserts.
    docs.create(&a, &alpha, "orders", json!({"_id": "o-1", "n": 5}))
        .await
        .unwrap();
    let again = docs
        .create(&a, &alpha, "orders", json!({"_id": "o-1", "n": 6}))
        .await;
    assert_eq!(code(again), ErrorCode::AlreadyExists);
    let upserted = docs
        .replace(&a, &alpha, "orders", "o-2", json!({"n": 7}), None)
        .await
        .unwrap();
    assert_eq!(
        (upserted.0["_version"].clone(), upserted.1),
        (json!(1), true)
    );
    let (_, created) = docs
        .replace(&a, &alpha, "orders", "o-2", json!({"n": 8}), None)
        .await
        .unwrap();
    assert!(!created);

    docs.delete(&a, &alpha, "orders", "o-1", Some(1))
        .await
        .unwrap();
    assert_eq!(
        code(docs.get(&a, &alpha, "orders", "o-1").await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(docs.delete(&a, &alpha, "orders", "o-1", None).await),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn bad_writes_get_clear_errors_and_change_nothing() {
    let (docs, store) = bundoc_with(DocsLimits::default());
    let (a, alpha) = (admin("alpha"), project("alpha"));
    orders(
        &docs,
        "alpha",
        json!({"schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}),
    )
    .await;
    let deep = (0..40).fold(json!(1), |v, _| json!({ "a": v }));
    let big = json!({"blob": "x".repeat(1024 * 1024)});
    let cases: Vec<(Value, &str)> = vec![
        (json!([1]), "a JSON object"),
        (json!({"_version": 9}), "set by Bundoc"),
        (json!({"$where": 1}), "'$'"),
        (json!({"n": "seven"}), "schema"),
        (deep, "nest at most"),
        (json!({"_id": "no spaces"}), "_id is a string"),
    ];
    for (doc, expected) in cases {
        let err = docs
            .create(&a, &alpha, "orders", doc.clone())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{doc}: {err}");
    }
    assert_eq!(
        code(docs.create(&a, &alpha, "orders", big).await),
        ErrorCode::PayloadTooLarge
    );
    assert_eq!(
        code(docs.create(&a, &alpha, "nothing", json!({})).await),
        ErrorCode::NotFound
    );
    assert_eq!(store.usage(&alpha).await.unwrap().documents, 0);
}

#[tokio::test]
async fn batches_are_all_or_nothing() {
    let docs = bundoc();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    docs.create_collection(
        &a,
        &alpha,
        &json!({"name": "users", "indexes": [{"fields": ["email"], "unique": true}]}),
    )
    .await
    .unwrap();
    let ops = |email2: &str| -> Vec<WriteOp> {
        serde_json::from_value(json!([
            {"op": "create", "doc": {"_id": "u1", "email": "a@x"}},
            {"op": "create", "doc": {"_id": "u2", "email": email2}},
        ]))
        .unwrap()
    };
    // The second write collides with the first on the unique index.
    let err = docs
        .batch(&a, &alpha, "users", ops("a@x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert!(err.to_string().contains("unique index email"), "{err}");
    assert_eq!(
        code(docs.get(&a, &alpha, "users", "u1").await),
        ErrorCode::NotFound
    );
    let done = docs.batch(&a, &alpha, "users", ops("b@x")).await.unwrap();
    assert_eq!(done.len(), 2);
    // Freeing a unique value and taking it in one batch works.
    let swap: Vec<WriteOp> = serde_json::from_value(json!([
        {"op": "patch", "id": "u1", "patch": {"email": "c@x"}},
        {"op": "patch", "id": "u2", "patch": {"email": "a@x"}},
    ]))
    .unwrap();
    docs.batch(&a, &alpha, "users", swap).await.unwrap();
    let twice: Vec<WriteOp> = serde_json::from_value(json!([
        {"op": "delete", "id": "u1"}, {"op": "delete", "id": "u1"}
    ]))
    .unwrap();
    assert_eq!(
        code(docs.batch(&a, &alpha, "users", twice).await),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        code(docs.batch(&a, &alpha, "users", vec![]).await),
        ErrorCode::InvalidInput
    );
}

#[tokio::test]
async fn rules_govern_end_users_and_filter_lists() {
    let docs = bundoc();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    orders(
        &docs,
        "alpha",
        json!({"rules": {
            "read": "resource.owner == auth.uid",
            "list": "resource.owner == auth.uid",
            "create": "request.owner == auth.uid",
            "update": "resource.owner == auth.uid && request.owner == auth.uid",
        }}),
    )
    .await;
    let (ann, bob) = (end_user("alpha", "ann"), end_user("alpha", "bob"));
    let mine = docs
        .create(&ann, &alpha, "orders", json!({"owner": "ann", "n": 1}))
        .await
        .unwrap();
    let id = mine["_id"].as_str().unwrap();
    docs.create(&a, &alpha, "orders", json!({"owner": "bob", "n": 2}))
        .await
        .unwrap();
    docs.create(&a, &alpha, "orders", json!({"n": 3}))
        .await
        .unwrap();

    let forged = docs
        .create(&ann, &alpha, "orders", json!({"owner": "bob"}))
        .await;
    assert_eq!(code(forged), ErrorCode::PermissionDenied);
    assert_eq!(
        code(docs.get(&bob, &alpha, "orders", id).await),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        docs.get(&ann, &alpha, "orders", id).await.unwrap()["n"],
        json!(1)
    );
    let steal = docs
        .patch(&bob, &alpha, "orders", id, json!({"owner": "bob"}), None)
        .await;
    assert_eq!(code(steal), ErrorCode::PermissionDenied);
    let give_away = docs
        .patch(&ann, &alpha, "orders", id, json!({"owner": "bob"}), None)
        .await;
    assert_eq!(code(give_away), ErrorCode::PermissionDenied);
    // No delete rule: closed to end users, open to the secret key.
    let err = docs
        .delete(&ann, &alpha, "orders", id, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no delete rule"), "{err}");

    // Lists hold only what the list rule allows; the key sees everything.
    let page = docs
        .query(&ann, &alpha, "orders", &json!({}))
        .await
        .unwrap();
    assert_eq!(page.documents.len(), 1);
    let anonymous = who("alpha", PrincipalKind::PublishableKey, Rights::NONE, "pk");
    let page = docs
        .query(&anonymous, &alpha, "orders", &json!({}))
        .await
        .unwrap();
    assert!(
        page.documents.is_empty(),
        "an owner-less document is not anonymous's"
    );
    let page = docs.query(&a, &alpha, "orders", &json!({})).await.unwrap();
    assert_eq!(page.documents.len(), 3);
}

#[tokio::test]
async fn projects_are_isolated() {
    let docs = bundoc();
    orders(&docs, "alpha", json!({})).await;
    orders(&docs, "beta", json!({})).await;
    let (a, alpha, beta) = (admin("alpha"), project("alpha"), project("beta"));
    docs.create(&a, &alpha, "orders", json!({"_id": "x", "n": 1}))
        .await
        .unwrap();
    for result in [
        docs.get(&a, &beta, "orders", "x").await.map(|_| ()),
        docs.query(&a, &beta, "orders", &json!({}))
            .await
            .map(|_| ()),
        docs.create(&a, &beta, "orders", json!({}))
            .await
            .map(|_| ()),
        docs.delete_collection(&a, &beta, "orders").await,
    ] {
        assert_eq!(code(result), ErrorCode::PermissionDenied);
    }
    let b = admin("beta");
    assert_eq!(
        code(docs.get(&b, &beta, "orders", "x").await),
        ErrorCode::NotFound
    );
    // An end user of beta can't reach alpha's documents through rules.
    let eve = end_user("beta", "eve");
    assert_eq!(
        code(docs.get(&eve, &alpha, "orders", "x").await),
        ErrorCode::PermissionDenied
    );
}

#[tokio::test]
async fn queries_use_indexes_and_name_the_missing_one() {
    let docs = bundoc_with(DocsLimits {
        max_scan: 50,
        ..DocsLimits::default()
    })
    .0;
    let (a, alpha) = (admin("alpha"), project("alpha"));
    orders(&docs, "alpha", json!({})).await;
    let ops: Vec<WriteOp> = (0..200)
        .map(|i| WriteOp::Create {
            doc: json!({"_id": format!("d{i:03}"), "city": CITIES[i % 4], "n": i % 10, "k": i}),
        })
        .collect();
    docs.batch(&a, &alpha, "orders", ops).await.unwrap();

    let q = json!({"filter": {"city": "Oslo"}, "limit": 5});
    let stats = docs.explain(&a, &alpha, "orders", &q).await.unwrap();
    assert_eq!(
        (stats.plan, stats.index.as_deref(), stats.ordered),
        ("index", Some("city"), true)
    );
    assert!(stats.examined <= 6, "{stats:?}");
    let page = docs.query(&a, &alpha, "orders", &q).await.unwrap();
    let ids: Vec<&str> = page
        .documents
        .iter()
        .map(|d| d["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["d000", "d004", "d008", "d012", "d016"]);

    let sorted = json!({"sort": [{"n": "desc"}], "limit": 3});
    let stats = docs.explain(&a, &alpha, "orders", &sorted).await.unwrap();
    assert_eq!((stats.index.as_deref(), stats.ordered), (Some("n"), true));
    assert!(stats.examined <= 4, "{stats:?}");

    // A count through an index needs no sorting: any number is fine,
    // while a page of the same unordered lookup is refused.
    let wide = json!({"n": {"$gte": 0}});
    assert_eq!(docs.count(&a, &alpha, "orders", &wide).await.unwrap(), 200);
    let err = docs
        .query(&a, &alpha, "orders", &json!({ "filter": wide }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);

    // Equality then sort, on a compound index: read in order too.
    let newest_in_oslo = json!({"filter": {"city": "Oslo"}, "sort": [{"k": "desc"}], "limit": 3});
    let stats = docs
        .explain(&a, &alpha, "orders", &newest_in_oslo)
        .await
        .unwrap();
    assert_eq!(
        (stats.index.as_deref(), stats.ordered),
        (Some("city_k"), true),
        "{stats:?}"
    );
    assert!(stats.examined <= 4, "{stats:?}");
    let page = docs
        .query(&a, &alpha, "orders", &newest_in_oslo)
        .await
        .unwrap();
    let ks: Vec<&Value> = page.documents.iter().map(|d| &d["k"]).collect();
    assert_eq!(ks, [&json!(196), &json!(192), &json!(188)]);

    let unindexed = docs
        .query(
            &a,
            &alpha,
            "orders",
            &json!({"filter": {"k": {"$gt": 190}}}),
        )
        .await
        .unwrap_err();
    assert!(
        unindexed
            .to_string()
            .contains(r#"add one: {"fields":["k"]}"#),
        "{unindexed}"
    );
    // Declaring the index builds it over the stored documents.
    docs.update_collection(
        &a,
        &alpha,
        "orders",
        &json!({"indexes": [
            {"fields": ["city"]}, {"fields": ["n"]}, {"fields": ["city", "k"]}, {"fields": ["k"]},
        ]}),
    )
    .await
    .unwrap();
    let page = docs
        .query(
            &a,
            &alpha,
            "orders",
            &json!({"filter": {"k": {"$gt": 190}}}),
        )
        .await
        .unwrap();
    assert_eq!(page.documents.len(), 9);
}

#[tokio::test]
async fn encrypted_fields_are_stored_sealed_and_refused_in_queries() {
    let (docs, store) = bundoc_with(DocsLimits::default());
    let (a, alpha) = (admin("alpha"), project("alpha"));
    docs.create_collection(
        &a,
        &alpha,
        &json!({"name": "people", "encrypted": ["ssn", "card.number"]}),
    )
    .await
    .unwrap();
    let doc = json!({"_id": "p1", "name": "Ann", "ssn": "010190-12345", "card": {"number": 4111, "exp": "12/30"}});
    let created = docs.create(&a, &alpha, "people", doc).await.unwrap();
    assert_eq!(created["ssn"], json!("010190-12345"));
    let stored = store.get(&alpha, "people", "p1").await.unwrap().unwrap();
    let sealed = stored["ssn"].as_str().unwrap();
    assert!(
        sealed.starts_with("bdenc1:") && !sealed.contains("12345"),
        "{stored}"
    );
    assert!(
        stored["card"]["number"]
            .as_str()
            .unwrap()
            .starts_with("bdenc1:")
    );
    assert_eq!(stored["card"]["exp"], json!("12/30"));
    assert_eq!(
        docs.get(&a, &alpha, "people", "p1").await.unwrap()["card"]["number"],
        json!(4111)
    );
    // Patching keeps the other sealed fields opening.
    let patched = docs
        .patch(&a, &alpha, "people", "p1", json!({"name": "Anne"}), None)
        .await
        .unwrap();
    assert_eq!(patched["ssn"], json!("010190-12345"));
    let err = docs
        .query(
            &a,
            &alpha,
            "people",
            &json!({"filter": {"ssn": "010190-12345"}}),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ssn is encrypted"), "{err}");
    let page = docs.query(&a, &alpha, "people", &json!({})).await.unwrap();
    assert_eq!(page.documents[0]["ssn"], json!("010190-12345"));
    let err = docs
        .create_collection(
            &a,
            &alpha,
            &json!({"name": "bad", "encrypted": ["x"], "indexes": [{"fields": ["x"]}]}),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("can't be indexed"), "{err}");
}

#[tokio::test]
async fn quotas_refuse_growth_with_a_clear_error() {
    let docs = bundoc_with(DocsLimits {
        quota: Quota {
            max_documents: 3,
            max_bytes: 1_000_000,
        },
        ..DocsLimits::default()
    })
    .0;
    let (a, alpha) = (admin("alpha"), project("alpha"));
    orders(&docs, "alpha", json!({})).await;
    for i in 0..3 {
        docs.create(&a, &alpha, "orders", json!({"n": i}))
            .await
            .unwrap();
    }
    let err = docs
        .create(&a, &alpha, "orders", json!({"n": 4}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::QuotaExceeded);
    assert!(err.to_string().contains("quota is 3 documents"), "{err}");
    assert_eq!(docs.usage(&a, &alpha).await.unwrap().documents, 3);
}

#[tokio::test]
async fn changes_are_published_in_commit_order() {
    let docs = bundoc();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    orders(&docs, "alpha", json!({})).await;
    let mut feed = docs
        .events()
        .subscribe(&a, &alpha, "bundoc.orders", None)
        .await
        .unwrap();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (docs, a, alpha) = (docs.clone(), a.clone(), alpha.clone());
            tokio::spawn(async move {
                for i in 0..10 {
                    docs.replace(&a, &alpha, "orders", "hot", json!({"w": w, "i": i}), None)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let mut versions = Vec::new();
    while versions.len() < 80 {
        match feed.next().await {
            Some(Delivery::Event(e)) => {
                let change: Change = serde_json::from_value(e.data.to_value()).unwrap();
                versions.push(change.version);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(versions, (1..=80).collect::<Vec<u64>>());
    // Clients can't forge changes on the platform's topics.
    let forged = docs
        .events()
        .publish(&a, &alpha, "bundoc.orders", "{}")
        .await;
    assert_eq!(code(forged), ErrorCode::PermissionDenied);
}

async fn next_frame(watch: &mut super::Watch) -> super::WatchEvent {
    tokio::time::timeout(std::time::Duration::from_secs(5), watch.next())
        .await
        .expect("a frame within 5 s")
        .expect("the subscription is open")
}

#[tokio::test]
async fn subscriptions_send_a_snapshot_then_changes_and_resume() {
    use super::WatchEvent::{Added, Changed, Removed, Snapshot};
    let docs = bundoc();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    orders(&docs, "alpha", json!({})).await;
    docs.create(
        &a,
        &alpha,
        "orders",
        json!({"_id": "a", "city": "Oslo", "n": 1}),
    )
    .await
    .unwrap();
    docs.create(
        &a,
        &alpha,
        "orders",
        json!({"_id": "b", "city": "Bergen", "n": 2}),
    )
    .await
    .unwrap();
    let q = json!({"filter": {"city": "Oslo"}});
    let mut watch = docs.watch(&a, &alpha, "orders", &q, None).await.unwrap();
    let Snapshot { documents, .. } = next_frame(&mut watch).await else {
        panic!("a snapshot first")
    };
    assert_eq!(documents.len(), 1);

    docs.create(&a, &alpha, "orders", json!({"_id": "c", "city": "Oslo"}))
        .await
        .unwrap();
    docs.patch(&a, &alpha, "orders", "b", json!({"n": 3}), None)
        .await
        .unwrap(); // Not Oslo: nothing.
    docs.patch(&a, &alpha, "orders", "a", json!({"n": 5}), None)
        .await
        .unwrap();
    docs.patch(&a, &alpha, "orders", "c", json!({"city": "Bodø"}), None)
        .await
        .unwrap();
    let Added { doc, .. } = next_frame(&mut watch).await else {
        panic!()
    };
    assert_eq!(doc["_id"], json!("c"));
    let Changed { doc, .. } = next_frame(&mut watch).await else {
        panic!()
    };
    assert_eq!(
        (doc["_id"].clone(), doc["n"].clone()),
        (json!("a"), json!(5))
    );
    let Removed { id, position } = next_frame(&mut watch).await else {
        panic!()
    };
    assert_eq!(id, "c");
    drop(watch);

    // Changes made while away arrive on resume, in order.
    docs.delete(&a, &alpha, "orders", "a", None).await.unwrap();
    docs.create(&a, &alpha, "orders", json!({"_id": "d", "city": "Oslo"}))
        .await
        .unwrap();
    let mut resumed = docs
        .watch(&a, &alpha, "orders", &q, Some(position))
        .await
        .unwrap();
    let Removed { id, .. } = next_frame(&mut resumed).await else {
        panic!()
    };
    assert_eq!(id, "a");
    let Changed { doc, .. } = next_frame(&mut resumed).await else {
        panic!()
    };
    assert_eq!(doc["_id"], json!("d"));

    let err = docs
        .watch(
            &end_user("alpha", "x"),
            &project("beta"),
            "orders",
            &q,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PermissionDenied);
}

#[tokio::test]
async fn encrypted_data_survives_key_rotation_and_master_key_rewrap() {
    let kms_store = Arc::new(MemoryKms::new());
    let kms_with = |master: &str| {
        Kms::new(
            kms_store.clone(),
            Arc::new(MasterKey::parse(master).unwrap()),
            KmsLimits::default(),
            Arc::new(KmsMetrics::unregistered()),
        )
    };
    let docs_store = Arc::new(MemoryDocStore::new());
    let bundoc_on = |kms: Kms| {
        Bundoc::new(
            docs_store.clone(),
            events(),
            Some(Arc::new(LocalKeys::new(kms, "bundoc"))),
            DocsLimits::default(),
            Arc::new(DocsMetrics::unregistered()),
        )
    };
    let (a, alpha) = (admin("alpha"), project("alpha"));
    let old_kms = kms_with(&"ab".repeat(32));
    let docs = bundoc_on(old_kms.clone());
    docs.create_collection(&a, &alpha, &json!({"name": "people", "encrypted": ["ssn"]}))
        .await
        .unwrap();
    docs.create(&a, &alpha, "people", json!({"_id": "p1", "ssn": "111"}))
        .await
        .unwrap();

    // Rotating the project's KMS key: old data opens, new data too.
    old_kms.rotate(&a, &alpha, super::KMS_KEY).await.unwrap();
    let docs = bundoc_on(old_kms.clone());
    assert_eq!(
        docs.get(&a, &alpha, "people", "p1").await.unwrap()["ssn"],
        json!("111")
    );
    docs.create(&a, &alpha, "people", json!({"_id": "p2", "ssn": "222"}))
        .await
        .unwrap();

    // Re-wrapping BunKMS under a new master key: everything still opens
    // through a fresh Bundoc (no cached data key).
    let old = MasterKey::parse(&"ab".repeat(32)).unwrap();
    let new = MasterKey::parse(&"cd".repeat(32)).unwrap();
    crate::kms::rewrap::rewrap(&*kms_store, &old, &new)
        .await
        .unwrap();
    let docs = bundoc_on(kms_with(&"cd".repeat(32)));
    for (id, ssn) in [("p1", "111"), ("p2", "222")] {
        assert_eq!(
            docs.get(&a, &alpha, "people", id).await.unwrap()["ssn"],
            json!(ssn)
        );
    }
    // And a ciphertext moved to another document does not open there.
    let mut moved = docs_store
        .get(&alpha, "people", "p1")
        .await
        .unwrap()
        .unwrap();
    moved["_id"] = json!("p3");
    let doc_of_p1 = moved.clone();
    let batch = super::store::Batch {
        collection: "people".into(),
        collection_version: 1,
        writes: vec![super::store::Write {
            id: "p3".into(),
            expect: super::store::Expect::Absent,
            doc: Some(doc_of_p1),
            remove: vec![],
            add: vec![],
        }],
        quota: None,
    };
    assert!(docs_store.commit(&alpha, &[batch]).await[0].is_ok());
    let err = docs.get(&a, &alpha, "people", "p3").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal, "{err}");
}

#[tokio::test]
async fn subscriptions_follow_rule_changes() {
    use super::WatchEvent::{Changed, Removed, Snapshot};
    let docs = bundoc();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    let open = json!({"rules": {"list": "true"}});
    orders(&docs, "alpha", open).await;
    docs.create(&a, &alpha, "orders", json!({"_id": "x", "n": 1}))
        .await
        .unwrap();
    let ann = end_user("alpha", "ann");
    let mut watch = docs
        .watch(&ann, &alpha, "orders", &json!({}), None)
        .await
        .unwrap();
    let Snapshot { documents, .. } = next_frame(&mut watch).await else {
        panic!()
    };
    assert_eq!(documents.len(), 1);
    docs.patch(&a, &alpha, "orders", "x", json!({"n": 2}), None)
        .await
        .unwrap();
    assert!(matches!(next_frame(&mut watch).await, Changed { .. }));
    // The list rule closes: the next change of x is a removal for ann.
    docs.update_collection(
        &a,
        &alpha,
        "orders",
        &json!({"indexes": [{"fields": ["city"]}, {"fields": ["n"]}, {"fields": ["city", "k"]}],
                "rules": {"list": "resource.owner == auth.uid"}}),
    )
    .await
    .unwrap();
    docs.patch(&a, &alpha, "orders", "x", json!({"n": 3}), None)
        .await
        .unwrap();
    assert_eq!(
        match next_frame(&mut watch).await {
            Removed { id, .. } => id,
            other => panic!("{other:?}"),
        },
        "x"
    );
}
