//! The conformance suite every [`KvStore`] must pass; the same assertions
//! run on the engine in-process, our bunder over TCP, and a real Redis.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;

use super::store::{Condition, KvStore, PutOptions};
use crate::ErrorCode;
use crate::id::{ProjectId, random_hex};

fn project() -> ProjectId {
    ProjectId::new(format!("p{}", random_hex(5))).unwrap_or_else(|e| panic!("{e}"))
}

fn v(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

pub async fn run(store: &dyn KvStore) {
    let (a, b) = (project(), project());

    // Put, get, overwrite, delete.
    assert!(
        store
            .put(&a, b"k", v("1"), PutOptions::default())
            .await
            .unwrap()
    );
    assert_eq!(store.get(&a, b"k").await.unwrap(), Some(v("1")));
    assert!(
        store
            .put(&a, b"k", v("2"), PutOptions::default())
            .await
            .unwrap()
    );
    assert_eq!(store.get(&a, b"k").await.unwrap(), Some(v("2")));
    assert!(store.delete(&a, b"k").await.unwrap());
    assert!(!store.delete(&a, b"k").await.unwrap());
    assert_eq!(store.get(&a, b"k").await.unwrap(), None);

    // Binary keys and values.
    let key = b"bin\x00\xff:*?[";
    store
        .put(
            &a,
            key,
            Bytes::from_static(b"\x00\r\n\xff"),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get(&a, key).await.unwrap(),
        Some(Bytes::from_static(b"\x00\r\n\xff"))
    );

    // Conditional puts.
    let create = PutOptions {
        condition: Condition::IfAbsent,
        ..PutOptions::default()
    };
    let update = PutOptions {
        condition: Condition::IfPresent,
        ..PutOptions::default()
    };
    assert!(
        !store.put(&a, b"c", v("x"), update).await.unwrap(),
        "nothing to update"
    );
    assert!(store.put(&a, b"c", v("x"), create).await.unwrap());
    assert!(
        !store.put(&a, b"c", v("y"), create).await.unwrap(),
        "exists already"
    );
    assert!(store.put(&a, b"c", v("z"), update).await.unwrap());
    assert_eq!(store.get(&a, b"c").await.unwrap(), Some(v("z")));

    // TTLs.
    let short = PutOptions {
        ttl: Some(Duration::from_millis(80)),
        ..PutOptions::default()
    };
    store.put(&a, b"t", v("soon"), short).await.unwrap();
    let ttl = store.ttl(&a, b"t").await.unwrap().expect("has a ttl");
    assert!(ttl <= Duration::from_millis(80));
    assert_eq!(store.ttl(&a, b"c").await.unwrap(), None);
    assert_eq!(
        store.ttl(&a, b"missing").await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(store.get(&a, b"t").await.unwrap(), None, "expired");

    // Counters.
    assert_eq!(store.incr(&a, b"n", 5).await.unwrap(), 5);
    assert_eq!(store.incr(&a, b"n", -7).await.unwrap(), -2);
    assert_eq!(
        store.incr(&a, b"c", 1).await.unwrap_err().code(),
        ErrorCode::Conflict
    );

    // Projects are isolated.
    store
        .put(&b, b"k", v("b's"), PutOptions::default())
        .await
        .unwrap();
    store
        .put(&a, b"k", v("a's"), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get(&b, b"k").await.unwrap(), Some(v("b's")));
    assert!(store.delete(&b, b"k").await.unwrap());
    assert_eq!(store.get(&a, b"k").await.unwrap(), Some(v("a's")));

    // Scans by prefix, paged, each key once, never another project's.
    for i in 0..120 {
        store
            .put(
                &a,
                format!("user:{i}").as_bytes(),
                v("x"),
                PutOptions::default(),
            )
            .await
            .unwrap();
        store
            .put(
                &b,
                format!("user:{i}").as_bytes(),
                v("x"),
                PutOptions::default(),
            )
            .await
            .unwrap();
    }
    store
        .put(&a, b"users-other", v("x"), PutOptions::default())
        .await
        .unwrap();
    let mut seen = HashSet::new();
    let mut cursor = 0;
    loop {
        let page = store.scan(&a, b"user:", cursor, 25).await.unwrap();
        for key in page.keys {
            assert!(key.starts_with(b"user:"), "{key:?}");
            seen.insert(key);
        }
        cursor = page.cursor;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 120);

    // Bad keys change nothing.
    assert_eq!(
        store.get(&a, b"").await.unwrap_err().code(),
        ErrorCode::InvalidInput
    );
    let huge = vec![b'k'; 2000];
    assert_eq!(
        store
            .put(&a, &huge, v("x"), PutOptions::default())
            .await
            .unwrap_err()
            .code(),
        ErrorCode::InvalidInput
    );
}
