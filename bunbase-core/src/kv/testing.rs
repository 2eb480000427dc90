//! The conformance suite every [`KvStore`] must pass; the same assertions
//! run on the engine in-process, our bunder over TCP, and a real Redis.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;

use super::store::{Condition, KvStore, PutOptions, Quota, Usage};
use crate::ErrorCode;
use crate::id::{ProjectId, random_hex};

fn project() -> ProjectId {
    ProjectId::new(format!("p{}", random_hex(5))).unwrap_or_else(|e| panic!("{e}"))
}

fn v(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

pub async fn run(store: &dyn KvStore) {
    basics(store).await;
    accounting(store).await;
    quotas(store).await;
    concurrent_writers(store).await;
}

async fn basics(store: &dyn KvStore) {
    let (a, b) = (project(), project());

    // Put, get, overwrite, delete.
    assert!(
        store
            .put(&a, b"k", v("1"), PutOptions::default())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.get(&a, b"k").await.unwrap(), Some(v("1")));
    assert!(
        store
            .put(&a, b"k", v("2"), PutOptions::default())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.get(&a, b"k").await.unwrap(), Some(v("2")));
    assert!(store.delete(&a, b"k").await.unwrap().is_some());
    assert!(store.delete(&a, b"k").await.unwrap().is_none());
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
        store.put(&a, b"c", v("x"), update).await.unwrap().is_none(),
        "nothing to update"
    );
    assert!(store.put(&a, b"c", v("x"), create).await.unwrap().is_some());
    assert!(
        store.put(&a, b"c", v("y"), create).await.unwrap().is_none(),
        "exists already"
    );
    assert!(store.put(&a, b"c", v("z"), update).await.unwrap().is_some());
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
    assert_eq!(store.incr(&a, b"n", 5, None).await.unwrap().0, 5);
    assert_eq!(store.incr(&a, b"n", -7, None).await.unwrap().0, -2);
    assert_eq!(
        store.incr(&a, b"c", 1, None).await.unwrap_err().code(),
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
    assert!(store.delete(&b, b"k").await.unwrap().is_some());
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

fn put_plain(ttl: Option<Duration>) -> PutOptions {
    PutOptions {
        ttl,
        ..PutOptions::default()
    }
}

/// Usage counts live keys and their key + value bytes, through every kind
/// of write, and stops counting keys that expire.
async fn accounting(store: &dyn KvStore) {
    let p = project();
    assert_eq!(store.usage(&p).await.unwrap(), Usage::default());
    store
        .put(&p, b"ab", v("1234"), put_plain(None))
        .await
        .unwrap();
    store.put(&p, b"c", v("12"), put_plain(None)).await.unwrap();
    assert_eq!(store.usage(&p).await.unwrap(), Usage { keys: 2, bytes: 9 });
    // Overwrite: same key count, new size.
    store.put(&p, b"ab", v("1"), put_plain(None)).await.unwrap();
    assert_eq!(store.usage(&p).await.unwrap(), Usage { keys: 2, bytes: 6 });
    // A refused conditional put changes nothing.
    let create = PutOptions {
        condition: Condition::IfAbsent,
        ..PutOptions::default()
    };
    assert!(
        store
            .put(&p, b"ab", v("xxxxxxxx"), create)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.usage(&p).await.unwrap(), Usage { keys: 2, bytes: 6 });
    // Counters count their decimal text.
    assert_eq!(store.incr(&p, b"n", 100, None).await.unwrap().0, 100);
    assert_eq!(store.usage(&p).await.unwrap(), Usage { keys: 3, bytes: 10 });
    assert_eq!(store.incr(&p, b"n", -95, None).await.unwrap().0, 5);
    assert_eq!(store.usage(&p).await.unwrap(), Usage { keys: 3, bytes: 8 });
    // Deletes free, deleting a missing key changes nothing.
    assert!(store.delete(&p, b"c").await.unwrap().is_some());
    assert!(store.delete(&p, b"c").await.unwrap().is_none());
    assert_eq!(store.usage(&p).await.unwrap(), Usage { keys: 2, bytes: 5 });
    // Keys that expire stop counting, without anyone touching them.
    for i in 0..5 {
        let key = format!("tmp{i}");
        store
            .put(
                &p,
                key.as_bytes(),
                v("xxxx"),
                put_plain(Some(Duration::from_millis(60))),
            )
            .await
            .unwrap();
    }
    assert_eq!(store.usage(&p).await.unwrap(), Usage { keys: 7, bytes: 45 });
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(store.usage(&p).await.unwrap(), Usage { keys: 2, bytes: 5 });
    // A key that had a TTL and is overwritten without one keeps counting.
    store
        .put(&p, b"t", v("x"), put_plain(Some(Duration::from_millis(50))))
        .await
        .unwrap();
    store.put(&p, b"t", v("x"), put_plain(None)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(90)).await;
    assert_eq!(store.get(&p, b"t").await.unwrap(), Some(v("x")));
    assert_eq!(store.usage(&p).await.unwrap(), Usage { keys: 3, bytes: 7 });
    // An expired key written again counts once.
    store
        .put(&p, b"e", v("x"), put_plain(Some(Duration::from_millis(30))))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(
        store
            .put(&p, b"e", v("yy"), create)
            .await
            .unwrap()
            .is_some(),
        "expired keys are absent"
    );
    assert_eq!(store.usage(&p).await.unwrap(), Usage { keys: 4, bytes: 10 });
    // Every write gets the project's next revision, so change events can
    // be ordered per key whatever order they arrive in.
    let r1 = store.put(&p, b"r", v("1"), put_plain(None)).await.unwrap();
    let (_, r2) = store.incr(&p, b"rn", 1, None).await.unwrap();
    let r3 = store.delete(&p, b"r").await.unwrap();
    let (r1, r3) = (r1.expect("written"), r3.expect("deleted"));
    assert!(r1 < r2 && r2 < r3, "{r1} {r2} {r3}");
    assert!(store.delete(&p, b"r").await.unwrap().is_none());
    assert!(store.delete(&p, b"rn").await.unwrap().is_some());
    // Scans never show the bookkeeping.
    let page = store.scan(&p, b"", 0, 1000).await.unwrap();
    let mut keys: Vec<Bytes> = page.keys;
    keys.sort();
    assert_eq!(keys, vec![v("ab"), v("e"), v("n"), v("t")]);
}

/// Quotas refuse growth past them, and nothing else.
async fn quotas(store: &dyn KvStore) {
    let p = project();
    let quota = Quota {
        max_keys: 3,
        max_bytes: 30,
    };
    let limited = PutOptions {
        quota: Some(quota),
        ..PutOptions::default()
    };
    for key in ["a", "b", "c"] {
        store
            .put(&p, key.as_bytes(), v("123"), limited)
            .await
            .unwrap();
    }
    let err = store.put(&p, b"d", v("1"), limited).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::QuotaExceeded, "{err}");
    assert_eq!(
        store.get(&p, b"d").await.unwrap(),
        None,
        "refused writes change nothing"
    );
    let err = store.incr(&p, b"d", 1, Some(quota)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::QuotaExceeded);
    // Overwriting an existing key is fine while within bytes.
    store.put(&p, b"a", v("1234567890"), limited).await.unwrap();
    // 11 + 4 + 4 = 19 bytes; growing "b" to 16 value bytes makes 31.
    let err = store
        .put(&p, b"b", v("1234567890123456"), limited)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::QuotaExceeded);
    assert_eq!(store.get(&p, b"b").await.unwrap(), Some(v("123")));
    // Shrinking is always allowed, deleting frees room.
    store.put(&p, b"a", v("1"), limited).await.unwrap();
    assert!(store.delete(&p, b"c").await.unwrap().is_some());
    store.put(&p, b"d", v("1"), limited).await.unwrap();
    assert_eq!(store.usage(&p).await.unwrap(), Usage { keys: 3, bytes: 8 });
    // Another project's quota is its own.
    let other = project();
    store.put(&other, b"a", v("1"), limited).await.unwrap();
}

/// Writers racing on one project keep the books exact.
async fn concurrent_writers(store: &dyn KvStore) {
    let p = project();
    let writers = (0..8).map(|w| {
        let p = p.clone();
        async move {
            for i in 0..10 {
                let key = format!("w{w}-{i}");
                store
                    .put(&p, key.as_bytes(), v("12345"), PutOptions::default())
                    .await
                    .unwrap();
                store.incr(&p, b"shared", 1, None).await.unwrap();
            }
        }
    });
    futures_util::future::join_all(writers).await;
    assert_eq!(store.get(&p, b"shared").await.unwrap(), Some(v("80")));
    // 80 keys of 3-4 + 5 bytes, plus "shared" = "80".
    let expected_bytes: u64 = (0..8u64)
        .flat_map(|w| (0..10u64).map(move |i| format!("w{w}-{i}").len() as u64 + 5))
        .sum::<u64>()
        + 8;
    assert_eq!(
        store.usage(&p).await.unwrap(),
        Usage {
            keys: 81,
            bytes: expected_bytes
        }
    );
}
