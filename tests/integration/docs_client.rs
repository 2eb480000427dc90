//! The typed Bundoc client against a real server: collections, documents
//! with versions, queries built fluently, count and explain, and a
//! realtime query that keeps its view across a server-side drop.

use std::sync::Arc;
use std::time::Duration;

use bunbase_client::{Client, WatchFrame};
use bunbase_core::ErrorCode;
use bunbase_core::docs::DocsLimits;
use bunbase_core::docs::adapters::MemoryDocStore;
use bunbase_tests::harness::{self, ALPHA, Options};
use futures_util::StreamExt;
use serde_json::json;

async fn next(watch: &mut bunbase_client::DocWatch) -> WatchFrame {
    tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("a frame in time")
        .expect("the stream is open")
        .expect("no error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_client_round_trip() {
    let server = harness::start(Options {
        docs: Some((Arc::new(MemoryDocStore::new()), DocsLimits::default())),
        ..Options::default()
    })
    .await;
    let client = Client::new(server.url())
        .unwrap()
        .with_token(ALPHA)
        .with_project("alpha");
    client
        .collections("alpha")
        .create(
            &json!({"name": "orders", "indexes": [{"fields": ["city"]}, {"fields": ["total"]}]}),
        )
        .await
        .unwrap();
    let listed = client.collections("alpha").list().await.unwrap();
    assert_eq!(listed[0]["name"], json!("orders"));

    let orders = client.docs("orders");
    let first = orders
        .create(&json!({"_id": "o1", "city": "Oslo", "total": 40}))
        .await
        .unwrap();
    assert_eq!(first["_version"], json!(1));
    for (i, city) in ["Oslo", "Bergen", "Oslo", "Oslo"].iter().enumerate() {
        orders
            .create(&json!({"city": city, "total": 10 * i}))
            .await
            .unwrap();
    }
    let patched = orders
        .patch_if("o1", &json!({"total": 45}), 1)
        .await
        .unwrap();
    assert_eq!(patched["_version"], json!(2));
    let stale = orders
        .replace_if("o1", &json!({"total": 0}), 1)
        .await
        .unwrap_err();
    assert_eq!(stale.code(), ErrorCode::Conflict);
    assert!(orders.get("missing").await.unwrap().is_none());

    let oslo = orders.find(json!({"city": "Oslo"}));
    let page = oslo.clone().desc("total").limit(2).page().await.unwrap();
    let totals: Vec<_> = page.documents.iter().map(|d| d["total"].clone()).collect();
    assert_eq!(totals, [json!(45), json!(30)]);
    assert!(page.next_cursor.is_some());
    assert_eq!(oslo.clone().limit(1).all().await.unwrap().len(), 4);
    assert_eq!(oslo.count().await.unwrap(), 4);
    let explained = oslo.explain().await.unwrap();
    assert_eq!(explained["index"], json!("city"), "{explained}");
    let projected = oslo
        .clone()
        .fields(&["total"])
        .limit(1)
        .page()
        .await
        .unwrap();
    assert!(projected.documents[0].get("city").is_none());

    let results = orders
        .batch(&[
            json!({"op": "delete", "id": "o1"}),
            json!({"op": "create", "doc": {"_id": "o9", "city": "Oslo"}}),
        ])
        .await
        .unwrap();
    assert_eq!(results[0], json!(null));

    // Realtime: the snapshot, then changes to the matching set.
    let mut watch = orders.find(json!({"city": "Oslo"})).watch().await.unwrap();
    let WatchFrame::Snapshot(docs) = next(&mut watch).await else {
        panic!("a snapshot first")
    };
    assert_eq!(docs.len(), 4);
    orders
        .create(&json!({"_id": "o10", "city": "Oslo"}))
        .await
        .unwrap();
    assert!(matches!(next(&mut watch).await, WatchFrame::Added(d) if d["_id"] == json!("o10")));
    orders.delete("o9").await.unwrap();
    assert_eq!(next(&mut watch).await, WatchFrame::Removed("o9".into()));

    let other = Client::new(server.url())
        .unwrap()
        .with_token(ALPHA)
        .docs_in("beta", "orders");
    assert_eq!(
        other.create(&json!({})).await.unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
    let nowhere = Client::new(server.url())
        .unwrap()
        .with_token(ALPHA)
        .docs("orders");
    assert_eq!(
        nowhere.create(&json!({})).await.unwrap_err().code(),
        ErrorCode::InvalidInput
    );
}
