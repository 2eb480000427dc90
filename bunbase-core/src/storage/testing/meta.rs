//! The metadata store conformance suite.
//!
//! Every [`MetaStore`] must pass [`suite`]. It works in fresh random
//! projects (and access key ids), so it can run again and again on a shared
//! database; it panics on the first difference.

use std::collections::BTreeMap;
use std::fmt::Debug;

use futures_util::future::join_all;

use crate::error::{Error, ErrorCode};
use crate::id::{ProjectId, random_hex};
use crate::storage::meta::MetaStore;
use crate::storage::model::{
    Bucket, BucketRules, BucketSettings, ObjectInfo, Part, PutCondition, Quota, S3Credential,
    Upload, Usage,
};

/// No limit worth the name.
const UNLIMITED: Quota = Quota {
    max_bytes: u64::MAX,
    max_objects: u64::MAX,
};

/// Runs every check on `store`.
pub async fn suite(store: &dyn MetaStore) {
    assert!(!store.kind().is_empty());
    store.check().await.expect("check");
    buckets(store).await;
    objects(store).await;
    quotas(store).await;
    listing(store).await;
    deleting_buckets(store).await;
    uploads(store).await;
    abandoned_uploads(store).await;
    credentials(store).await;
    concurrent_if_absent(store).await;
    concurrent_quota(store).await;
}

fn project() -> ProjectId {
    ProjectId::new(format!("p-{}", random_hex(6))).expect("project id")
}

fn bucket(project: &ProjectId, name: &str) -> Bucket {
    Bucket {
        project: project.clone(),
        name: name.to_string(),
        settings: BucketSettings::default(),
        created_at: 1_000,
        updated_at: 1_000,
    }
}

fn object(bucket: &str, key: &str, size: u64) -> ObjectInfo {
    let mut metadata = BTreeMap::new();
    metadata.insert("size".to_string(), size.to_string());
    metadata.insert(
        "x-note".to_string(),
        "a \"quoted\" value; {json}?".to_string(),
    );
    ObjectInfo {
        bucket: bucket.to_string(),
        key: key.to_string(),
        size,
        etag: random_hex(16),
        content_type: "text/plain; charset=utf-8".to_string(),
        metadata,
        owner: Some("user-1".to_string()),
        last_modified: 1_700_000_000_000,
        blob: random_hex(16),
    }
}

fn upload(bucket: &str, id: &str, created_at: u64) -> Upload {
    let mut metadata = BTreeMap::new();
    metadata.insert("color".to_string(), "blue".to_string());
    Upload {
        id: id.to_string(),
        bucket: bucket.to_string(),
        key: format!("big/{id}.bin"),
        content_type: "application/octet-stream".to_string(),
        metadata,
        owner: None,
        created_at,
        blob: random_hex(16),
        token: random_hex(12),
    }
}

fn part(number: u32, size: u64) -> Part {
    Part {
        number,
        size,
        etag: random_hex(16),
        receipt: format!("receipt-{number}-{}", random_hex(4)),
    }
}

/// The code of the error `result` must be.
fn code<T: Debug>(result: Result<T, Error>, what: &str) -> ErrorCode {
    match result {
        Ok(v) => panic!("{what}: expected an error, got Ok({v:?})"),
        Err(e) => e.code(),
    }
}

fn usage(bytes: u64, objects: u64) -> Usage {
    Usage { bytes, objects }
}

async fn put(store: &dyn MetaStore, project: &ProjectId, o: &ObjectInfo) -> Option<ObjectInfo> {
    store
        .put_object(project, o, PutCondition::Any, UNLIMITED)
        .await
        .unwrap_or_else(|e| panic!("put {}/{}: {e}", o.bucket, o.key))
}

async fn keys(
    store: &dyn MetaStore,
    project: &ProjectId,
    bucket: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Vec<String> {
    store
        .list_objects(project, bucket, prefix, after, limit)
        .await
        .unwrap_or_else(|e| panic!("list {prefix:?} after {after:?}: {e}"))
        .into_iter()
        .map(|o| o.key)
        .collect()
}

async fn buckets(store: &dyn MetaStore) {
    let (p, q) = (project(), project());
    let mut alpha = bucket(&p, "alpha");
    alpha.settings = BucketSettings {
        public: true,
        allowed_content_types: vec!["image/*".into(), "application/pdf".into()],
        max_object_size: Some(1 << 20),
        rules: BucketRules {
            read: Some("true".into()),
            write: Some("auth != null && request.size < 1024".into()),
            delete: None,
        },
    };
    store.create_bucket(&alpha).await.expect("create alpha");
    assert_eq!(
        store.bucket(&p, "alpha").await.unwrap(),
        Some(alpha.clone())
    );
    assert_eq!(
        code(
            store.create_bucket(&bucket(&p, "alpha")).await,
            "create alpha twice"
        ),
        ErrorCode::AlreadyExists
    );
    // The first one is untouched.
    assert_eq!(
        store.bucket(&p, "alpha").await.unwrap(),
        Some(alpha.clone())
    );

    // Listed by name in byte order ('-' < '.' < digits < letters), whatever
    // the database's locale.
    for name in ["aaa", "aa0", "aa.1", "zz-z", "aa-2"] {
        store.create_bucket(&bucket(&p, name)).await.expect(name);
    }
    let names: Vec<String> = store
        .buckets(&p)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["aa-2", "aa.1", "aa0", "aaa", "alpha", "zz-z"]);

    // Another project: its own namespace.
    assert_eq!(store.bucket(&q, "alpha").await.unwrap(), None);
    assert!(store.buckets(&q).await.unwrap().is_empty());
    let q_alpha = bucket(&q, "alpha");
    store.create_bucket(&q_alpha).await.expect("q alpha");
    assert_eq!(store.buckets(&q).await.unwrap(), vec![q_alpha.clone()]);
    assert_eq!(
        store.bucket(&p, "alpha").await.unwrap(),
        Some(alpha.clone())
    );

    // Updates replace the settings.
    let mut changed = alpha.clone();
    changed.settings = BucketSettings::default();
    changed.settings.allowed_content_types = vec!["text/plain".into()];
    changed.updated_at = 2_000;
    store.update_bucket(&changed).await.expect("update");
    assert_eq!(
        store.bucket(&p, "alpha").await.unwrap(),
        Some(changed.clone())
    );
    assert_eq!(
        store.bucket(&q, "alpha").await.unwrap(),
        Some(q_alpha.clone())
    );
    assert_eq!(
        code(
            store.update_bucket(&bucket(&p, "missing")).await,
            "update missing"
        ),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(
            store.update_bucket(&bucket(&q, "aa0")).await,
            "update another's"
        ),
        ErrorCode::NotFound
    );
    assert_eq!(store.bucket(&q, "aa0").await.unwrap(), None);

    // Deleting: whether it existed; only the project's own.
    assert!(store.delete_bucket(&q, "alpha").await.unwrap());
    assert!(!store.delete_bucket(&q, "aa0").await.unwrap());
    assert_eq!(store.bucket(&p, "alpha").await.unwrap(), Some(changed));
    assert!(store.delete_bucket(&p, "aa0").await.unwrap());
    assert!(!store.delete_bucket(&p, "aa0").await.unwrap());
    assert_eq!(store.bucket(&p, "aa0").await.unwrap(), None);
    assert_eq!(store.buckets(&p).await.unwrap().len(), 5);
    // A deleted name can be taken again.
    store
        .create_bucket(&bucket(&p, "aa0"))
        .await
        .expect("recreate");
}

async fn objects(store: &dyn MetaStore) {
    let (p, q) = (project(), project());
    store.create_bucket(&bucket(&p, "data")).await.unwrap();
    store.create_bucket(&bucket(&p, "more")).await.unwrap();
    assert_eq!(store.usage(&p).await.unwrap(), usage(0, 0));

    let a = object("data", "a", 10);
    assert_eq!(put(store, &p, &a).await, None);
    assert_eq!(
        store.object(&p, "data", "a").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.object(&p, "more", "a").await.unwrap(), None);
    assert_eq!(store.usage(&p).await.unwrap(), usage(10, 1));

    // Replacing returns the replaced one.
    let mut a2 = object("data", "a", 4);
    a2.owner = None;
    a2.metadata.clear();
    a2.content_type = "application/json".into();
    assert_eq!(put(store, &p, &a2).await, Some(a.clone()));
    assert_eq!(
        store.object(&p, "data", "a").await.unwrap(),
        Some(a2.clone())
    );
    assert_eq!(store.usage(&p).await.unwrap(), usage(4, 1));

    // IfAbsent: refused over an existing object, which stays.
    let a3 = object("data", "a", 1);
    let refused = store
        .put_object(&p, &a3, PutCondition::IfAbsent, UNLIMITED)
        .await;
    assert_eq!(code(refused, "IfAbsent over a"), ErrorCode::Conflict);
    assert_eq!(
        store.object(&p, "data", "a").await.unwrap(),
        Some(a2.clone())
    );
    assert_eq!(store.usage(&p).await.unwrap(), usage(4, 1));
    let b = object("data", "b", 6);
    let stored = store
        .put_object(&p, &b, PutCondition::IfAbsent, UNLIMITED)
        .await
        .expect("IfAbsent b");
    assert_eq!(stored, None);
    assert_eq!(store.usage(&p).await.unwrap(), usage(10, 2));
    // The same key in another bucket is another object.
    let b_more = object("more", "b", 1);
    assert_eq!(put(store, &p, &b_more).await, None);
    assert_eq!(
        store.object(&p, "data", "b").await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(store.usage(&p).await.unwrap(), usage(11, 3));

    // A missing bucket: not_found, nothing stored.
    let lost = object("nope", "a", 1);
    let refused = store
        .put_object(&p, &lost, PutCondition::Any, UNLIMITED)
        .await;
    assert_eq!(
        code(refused, "put into a missing bucket"),
        ErrorCode::NotFound
    );
    assert_eq!(store.object(&p, "nope", "a").await.unwrap(), None);
    assert_eq!(store.usage(&p).await.unwrap(), usage(11, 3));

    // Another project sees none of it, and has no bucket "data".
    assert_eq!(store.object(&q, "data", "a").await.unwrap(), None);
    assert!(
        store
            .list_objects(&q, "data", "", None, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.delete_object(&q, "data", "a").await.unwrap(), None);
    let refused = store
        .put_object(&q, &object("data", "a", 1), PutCondition::Any, UNLIMITED)
        .await;
    assert_eq!(
        code(refused, "put into another's bucket"),
        ErrorCode::NotFound
    );
    assert_eq!(store.usage(&q).await.unwrap(), usage(0, 0));
    assert_eq!(
        store.object(&p, "data", "a").await.unwrap(),
        Some(a2.clone())
    );

    // Deleting returns the removed one.
    assert_eq!(store.delete_object(&p, "data", "b").await.unwrap(), Some(b));
    assert_eq!(store.delete_object(&p, "data", "b").await.unwrap(), None);
    assert_eq!(store.delete_object(&p, "gone", "b").await.unwrap(), None);
    assert_eq!(store.object(&p, "data", "b").await.unwrap(), None);
    assert_eq!(store.usage(&p).await.unwrap(), usage(5, 2));
    assert_eq!(
        store.delete_object(&p, "more", "b").await.unwrap(),
        Some(b_more)
    );
    assert_eq!(
        store.delete_object(&p, "data", "a").await.unwrap(),
        Some(a2)
    );
    assert_eq!(store.usage(&p).await.unwrap(), usage(0, 0));

    // Empty objects count as objects.
    assert_eq!(put(store, &p, &object("data", "empty", 0)).await, None);
    assert_eq!(store.usage(&p).await.unwrap(), usage(0, 1));
}

async fn quotas(store: &dyn MetaStore) {
    let p = project();
    store.create_bucket(&bucket(&p, "q")).await.unwrap();
    let quota = Quota {
        max_bytes: 100,
        max_objects: 3,
    };
    let at = &p;
    let put_q = |o: ObjectInfo, quota: Quota| async move {
        store.put_object(at, &o, PutCondition::Any, quota).await
    };

    let a = object("q", "a", 60);
    assert_eq!(put_q(a.clone(), quota).await.unwrap(), None);
    // Over the bytes: refused, nothing changed.
    let refused = put_q(object("q", "b", 50), quota).await;
    assert_eq!(code(refused, "bytes over"), ErrorCode::QuotaExceeded);
    assert_eq!(store.object(&p, "q", "b").await.unwrap(), None);
    assert_eq!(store.usage(&p).await.unwrap(), usage(60, 1));
    // Up to the quota exactly.
    let b = object("q", "b", 40);
    assert_eq!(put_q(b.clone(), quota).await.unwrap(), None);
    assert_eq!(store.usage(&p).await.unwrap(), usage(100, 2));
    let c = object("q", "c", 0);
    assert_eq!(put_q(c.clone(), quota).await.unwrap(), None);
    assert_eq!(store.usage(&p).await.unwrap(), usage(100, 3));
    // Over the objects: refused, nothing changed.
    let refused = put_q(object("q", "d", 0), quota).await;
    assert_eq!(code(refused, "objects over"), ErrorCode::QuotaExceeded);
    assert_eq!(store.object(&p, "q", "d").await.unwrap(), None);
    assert_eq!(store.usage(&p).await.unwrap(), usage(100, 3));
    // Replacing by a larger one over the bytes: refused, the old one stays.
    let refused = put_q(object("q", "a", 61), quota).await;
    assert_eq!(
        code(refused, "larger replacement"),
        ErrorCode::QuotaExceeded
    );
    assert_eq!(store.object(&p, "q", "a").await.unwrap(), Some(a.clone()));
    assert_eq!(store.usage(&p).await.unwrap(), usage(100, 3));
    // Replacing by a smaller one, or at the object limit: fine.
    let a2 = object("q", "a", 50);
    assert_eq!(put_q(a2.clone(), quota).await.unwrap(), Some(a));
    assert_eq!(store.usage(&p).await.unwrap(), usage(90, 3));

    // The quota lowered under the usage: what shrinks or keeps the usage
    // passes, what grows it does not.
    let low = Quota {
        max_bytes: 50,
        max_objects: 2,
    };
    let b2 = object("q", "b", 30);
    assert_eq!(put_q(b2.clone(), low).await.unwrap(), Some(b));
    assert_eq!(store.usage(&p).await.unwrap(), usage(80, 3));
    let refused = put_q(object("q", "b", 31), low).await;
    assert_eq!(
        code(refused, "growing over a lowered quota"),
        ErrorCode::QuotaExceeded
    );
    assert_eq!(store.object(&p, "q", "b").await.unwrap(), Some(b2.clone()));
    let c2 = object("q", "c", 0);
    assert_eq!(put_q(c2.clone(), low).await.unwrap(), Some(c));
    assert_eq!(store.usage(&p).await.unwrap(), usage(80, 3));
    let refused = put_q(object("q", "e", 0), low).await;
    assert_eq!(
        code(refused, "a new object over a lowered quota"),
        ErrorCode::QuotaExceeded
    );
    assert_eq!(store.object(&p, "q", "e").await.unwrap(), None);
    assert_eq!(store.usage(&p).await.unwrap(), usage(80, 3));

    // A refused IfAbsent changes nothing either.
    let refused = store
        .put_object(&p, &object("q", "b", 1), PutCondition::IfAbsent, quota)
        .await;
    assert_eq!(code(refused, "IfAbsent over b"), ErrorCode::Conflict);
    assert_eq!(store.usage(&p).await.unwrap(), usage(80, 3));

    // Deletes free room.
    assert_eq!(store.delete_object(&p, "q", "a").await.unwrap(), Some(a2));
    assert_eq!(store.usage(&p).await.unwrap(), usage(30, 2));
    assert_eq!(put_q(object("q", "d", 70), quota).await.unwrap(), None);
    assert_eq!(store.usage(&p).await.unwrap(), usage(100, 3));
    for key in ["b", "c", "d"] {
        assert!(store.delete_object(&p, "q", key).await.unwrap().is_some());
    }
    assert_eq!(store.usage(&p).await.unwrap(), usage(0, 0));
}

async fn listing(store: &dyn MetaStore) {
    let (p, q) = (project(), project());
    // Keys that LIKE would misread, that a locale would reorder, and
    // multi-byte UTF-8 of every length.
    let mut all: Vec<String> = [
        "a",
        "a%",
        "a%b",
        "a%%",
        "a_",
        "a_b",
        "a__",
        "aB",
        "ab",
        "a-b",
        "a.b",
        "a/b",
        "a/c/d",
        "a\\b",
        "a~",
        "b",
        "B",
        "é",
        "é/x",
        "e",
        "ä",
        "日本/1",
        "日本/2",
        "日本語",
        "\u{E000}",
        "\u{FFFF}",
        "😀",
        "😀/😀",
        "\u{10FFFF}",
        "\u{10FFFF}a",
        "z",
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    for name in ["list", "lis", "list-2"] {
        store.create_bucket(&bucket(&p, name)).await.unwrap();
    }
    store.create_bucket(&bucket(&q, "list")).await.unwrap();
    // Stored out of order; the neighbouring buckets and the other project
    // hold similar keys that must not show.
    let mut stored = Vec::new();
    for (i, key) in all.iter().enumerate().rev() {
        let o = object("list", key, i as u64);
        put(store, &p, &o).await;
        stored.push(o);
        put(store, &p, &object("lis", &format!("{key}-lis"), 1)).await;
        put(store, &p, &object("list-2", key, 1)).await;
        put(store, &q, &object("list", &format!("{key}-q"), 1)).await;
    }
    all.sort();
    stored.sort_by(|a, b| a.key.cmp(&b.key));

    // Whole objects come back, in byte order.
    let everything = store
        .list_objects(&p, "list", "", None, 1000)
        .await
        .unwrap();
    assert_eq!(everything, stored);

    let expect = |prefix: &str, after: Option<&str>, limit: usize| -> Vec<String> {
        all.iter()
            .filter(|k| k.starts_with(prefix) && after.is_none_or(|a| k.as_str() > a))
            .take(limit)
            .cloned()
            .collect()
    };
    let prefixes = [
        "",
        "a",
        "a%",
        "a%b",
        "a_",
        "a__",
        "a/",
        "a/c/",
        "aB",
        "b",
        "é",
        "e",
        "日本",
        "日本/",
        "日",
        "😀",
        "\u{FFFF}",
        "\u{10FFFF}",
        "none",
        "a%b/none",
        "z",
    ];
    for prefix in prefixes {
        assert_eq!(
            keys(store, &p, "list", prefix, None, 1000).await,
            expect(prefix, None, 1000),
            "prefix {prefix:?}"
        );
        // Page by page, with the last key as the cursor.
        let mut paged = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = keys(store, &p, "list", prefix, after.as_deref(), 3).await;
            assert!(page.len() <= 3);
            paged.extend(page.iter().cloned());
            if page.len() < 3 {
                break;
            }
            after = page.last().cloned();
        }
        assert_eq!(paged, expect(prefix, None, 1000), "paged prefix {prefix:?}");
    }

    // Cursors that are not keys, and limits.
    for (prefix, after) in [
        ("", "a0"),
        ("a", "a/"),
        ("a", "a%a"),
        ("a", "aa"),
        ("日本", "日本/1"),
        ("", "\u{10FFFF}"),
        ("", "zz"),
        ("a", "b"),
        ("a%", "a%"),
        // A cursor before the prefix, not under it.
        ("b", "a"),
        ("日本", "a"),
    ] {
        assert_eq!(
            keys(store, &p, "list", prefix, Some(after), 1000).await,
            expect(prefix, Some(after), 1000),
            "prefix {prefix:?} after {after:?}"
        );
    }
    assert_eq!(
        keys(store, &p, "list", "", None, 4).await,
        expect("", None, 4)
    );
    assert_eq!(
        keys(store, &p, "list", "a", Some("a_"), 2).await,
        expect("a", Some("a_"), 2)
    );
    assert!(keys(store, &p, "list", "", None, 0).await.is_empty());
    assert!(keys(store, &p, "missing", "", None, 10).await.is_empty());
    let others = keys(store, &q, "list", "", None, 1000).await;
    assert_eq!(others.len(), all.len());
    assert!(others.iter().all(|k| k.ends_with("-q")));
}

async fn deleting_buckets(store: &dyn MetaStore) {
    let (p, q) = (project(), project());
    store.create_bucket(&bucket(&p, "full")).await.unwrap();
    store.create_bucket(&bucket(&q, "full")).await.unwrap();
    put(store, &p, &object("full", "x", 3)).await;

    let refused = store.delete_bucket(&p, "full").await;
    assert_eq!(
        code(refused, "delete a bucket with an object"),
        ErrorCode::Conflict
    );
    assert!(store.bucket(&p, "full").await.unwrap().is_some());
    assert!(store.object(&p, "full", "x").await.unwrap().is_some());
    // Another project's bucket of that name is its own.
    assert!(store.delete_bucket(&q, "full").await.unwrap());

    store.delete_object(&p, "full", "x").await.unwrap();
    let open = upload("full", &random_hex(8), 5);
    store.create_upload(&p, &open).await.unwrap();
    let refused = store.delete_bucket(&p, "full").await;
    assert_eq!(
        code(refused, "delete a bucket with an upload"),
        ErrorCode::Conflict
    );
    assert!(store.bucket(&p, "full").await.unwrap().is_some());

    assert!(store.delete_upload(&p, &open.id).await.unwrap());
    assert!(store.delete_bucket(&p, "full").await.unwrap());
    assert_eq!(store.bucket(&p, "full").await.unwrap(), None);
    // Its objects are gone with it: a new bucket of that name is empty.
    store.create_bucket(&bucket(&p, "full")).await.unwrap();
    assert!(keys(store, &p, "full", "", None, 10).await.is_empty());
    assert_eq!(store.usage(&p).await.unwrap(), usage(0, 0));
}

async fn uploads(store: &dyn MetaStore) {
    let (p, q) = (project(), project());
    store.create_bucket(&bucket(&p, "up")).await.unwrap();
    store.create_bucket(&bucket(&p, "other")).await.unwrap();
    let u1 = upload("up", &format!("u1-{}", random_hex(4)), 1_000);
    let u2 = upload("up", &format!("u2-{}", random_hex(4)), 500);
    let u3 = upload("other", &format!("u3-{}", random_hex(4)), 100);
    for u in [&u1, &u2, &u3] {
        store.create_upload(&p, u).await.expect("create upload");
    }
    assert_eq!(
        code(
            store.create_upload(&p, &upload("up", &u1.id, 7)).await,
            "same id"
        ),
        ErrorCode::AlreadyExists
    );
    assert_eq!(store.upload(&p, &u1.id).await.unwrap(), Some(u1.clone()));
    assert_eq!(store.upload(&p, "missing").await.unwrap(), None);
    // Oldest first, by bucket.
    assert_eq!(
        store.uploads(&p, "up").await.unwrap(),
        vec![u2.clone(), u1.clone()]
    );
    assert_eq!(store.uploads(&p, "other").await.unwrap(), vec![u3.clone()]);
    assert!(store.uploads(&p, "none").await.unwrap().is_empty());
    // Another project sees none of them.
    assert_eq!(store.upload(&q, &u1.id).await.unwrap(), None);
    assert!(store.uploads(&q, "up").await.unwrap().is_empty());
    // Open uploads are not usage.
    assert_eq!(store.usage(&p).await.unwrap(), usage(0, 0));

    // Parts: by number, a number sent again replaces the earlier part.
    let (one, two, two_again) = (part(1, 5 << 20), part(2, 7), part(2, 9));
    store.put_part(&p, &u1.id, &two).await.unwrap();
    store.put_part(&p, &u1.id, &one).await.unwrap();
    assert_eq!(
        store.parts(&p, &u1.id).await.unwrap(),
        vec![one.clone(), two]
    );
    store.put_part(&p, &u1.id, &two_again).await.unwrap();
    let ten = part(10_000, 1);
    store.put_part(&p, &u1.id, &ten).await.unwrap();
    assert_eq!(
        store.parts(&p, &u1.id).await.unwrap(),
        vec![one.clone(), two_again.clone(), ten.clone()]
    );
    assert!(store.parts(&p, &u2.id).await.unwrap().is_empty());
    assert!(store.parts(&p, "missing").await.unwrap().is_empty());
    assert_eq!(
        code(
            store.put_part(&p, "missing", &one).await,
            "part of a missing upload"
        ),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(
            store.put_part(&q, &u1.id, &one).await,
            "part of another's upload"
        ),
        ErrorCode::NotFound
    );
    assert!(store.parts(&q, &u1.id).await.unwrap().is_empty());

    // Deleting forgets the upload and its parts.
    assert!(!store.delete_upload(&q, &u1.id).await.unwrap());
    assert!(store.upload(&p, &u1.id).await.unwrap().is_some());
    assert!(store.delete_upload(&p, &u1.id).await.unwrap());
    assert!(!store.delete_upload(&p, &u1.id).await.unwrap());
    assert_eq!(store.upload(&p, &u1.id).await.unwrap(), None);
    assert!(store.parts(&p, &u1.id).await.unwrap().is_empty());
    assert_eq!(
        code(
            store.put_part(&p, &u1.id, &one).await,
            "part of a deleted upload"
        ),
        ErrorCode::NotFound
    );
    assert_eq!(store.uploads(&p, "up").await.unwrap(), vec![u2.clone()]);
    // The id can be used again, with no parts from before.
    store.create_upload(&p, &u1).await.unwrap();
    assert!(store.parts(&p, &u1.id).await.unwrap().is_empty());
    for u in [&u1, &u2, &u3] {
        assert!(store.delete_upload(&p, &u.id).await.unwrap());
    }
}

async fn abandoned_uploads(store: &dyn MetaStore) {
    let (p, q) = (project(), project());
    // Old enough to come first on a shared database, told apart by id.
    let old = upload("b1", &format!("old-{}", random_hex(6)), 10);
    let newer = upload("b2", &format!("newer-{}", random_hex(6)), 20);
    let fresh = upload("b1", &format!("fresh-{}", random_hex(6)), u64::MAX / 4);
    store.create_upload(&p, &old).await.unwrap();
    store.create_upload(&q, &newer).await.unwrap();
    store.create_upload(&p, &fresh).await.unwrap();
    let ours = |found: Vec<(ProjectId, Upload)>, before: u64| -> Vec<(ProjectId, String)> {
        assert!(
            found
                .windows(2)
                .all(|w| w[0].1.created_at <= w[1].1.created_at)
        );
        assert!(found.iter().all(|(_, u)| u.created_at < before));
        found
            .into_iter()
            .filter(|(project, _)| project == &p || project == &q)
            .map(|(project, u)| (project, u.id))
            .collect()
    };
    let found = store.uploads_started_before(15, 100_000).await.unwrap();
    assert_eq!(ours(found, 15), vec![(p.clone(), old.id.clone())]);
    let found = store.uploads_started_before(21, 100_000).await.unwrap();
    assert_eq!(
        ours(found, 21),
        vec![(p.clone(), old.id.clone()), (q.clone(), newer.id.clone())]
    );
    let found = store.uploads_started_before(21, 100_000).await.unwrap();
    let whole = found.iter().find(|(_, u)| u.id == newer.id).unwrap();
    assert_eq!(whole, &(q.clone(), newer.clone()));
    assert_eq!(store.uploads_started_before(21, 1).await.unwrap().len(), 1);
    assert!(
        store
            .uploads_started_before(21, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .uploads_started_before(0, 100)
            .await
            .unwrap()
            .is_empty()
    );

    assert!(store.delete_upload(&p, &old.id).await.unwrap());
    assert!(store.delete_upload(&q, &newer.id).await.unwrap());
    assert!(store.delete_upload(&p, &fresh.id).await.unwrap());
    let found = store
        .uploads_started_before(u64::MAX, 100_000)
        .await
        .unwrap();
    assert!(ours(found, u64::MAX).is_empty());
}

async fn credentials(store: &dyn MetaStore) {
    let (p, q) = (project(), project());
    let credential = |project: &ProjectId, created_at: u64| S3Credential {
        access_key_id: format!("BB{}", random_hex(9).to_uppercase()),
        project: project.clone(),
        sealed_secret: vec![0, 1, 2, 0xfe, 0xff, 0, 0x80],
        created_by: "key:admin".to_string(),
        created_at,
    };
    let c1 = credential(&p, 2);
    let c2 = credential(&p, 1);
    let c3 = credential(&q, 1);
    for c in [&c1, &c2, &c3] {
        store.create_credential(c).await.expect("create credential");
    }
    // An id is global: taken by any project.
    let mut again = credential(&q, 3);
    again.access_key_id = c1.access_key_id.clone();
    assert_eq!(
        code(store.create_credential(&again).await, "taken id"),
        ErrorCode::AlreadyExists
    );
    assert_eq!(
        store.credential(&c1.access_key_id).await.unwrap(),
        Some(c1.clone())
    );
    assert_eq!(store.credential("BBMISSING").await.unwrap(), None);
    // Oldest first, each project its own.
    assert_eq!(
        store.credentials(&p).await.unwrap(),
        vec![c2.clone(), c1.clone()]
    );
    assert_eq!(store.credentials(&q).await.unwrap(), vec![c3.clone()]);

    // Only its own project deletes it.
    assert!(
        !store
            .delete_credential(&q, &c1.access_key_id)
            .await
            .unwrap()
    );
    assert_eq!(
        store.credential(&c1.access_key_id).await.unwrap(),
        Some(c1.clone())
    );
    assert!(
        store
            .delete_credential(&p, &c1.access_key_id)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_credential(&p, &c1.access_key_id)
            .await
            .unwrap()
    );
    assert_eq!(store.credential(&c1.access_key_id).await.unwrap(), None);
    assert_eq!(store.credentials(&p).await.unwrap(), vec![c2.clone()]);
    // A deleted id may be created again.
    store.create_credential(&c1).await.unwrap();
    for (project, c) in [(&p, &c1), (&p, &c2), (&q, &c3)] {
        assert!(
            store
                .delete_credential(project, &c.access_key_id)
                .await
                .unwrap()
        );
    }
    assert!(store.credentials(&p).await.unwrap().is_empty());
}

/// Concurrent `IfAbsent` puts of one key: exactly one wins.
async fn concurrent_if_absent(store: &dyn MetaStore) {
    let p = project();
    store.create_bucket(&bucket(&p, "race")).await.unwrap();
    // The project's usage exists already: nothing but the store's own
    // guard orders the contenders.
    put(store, &p, &object("race", "before", 1)).await;
    let mut expected = usage(1, 1);
    for round in 0..3 {
        let key = format!("same-{round}");
        let contenders: Vec<ObjectInfo> = (0..20u64).map(|i| object("race", &key, i + 1)).collect();
        let results = join_all(contenders.iter().map(|o| {
            let p = &p;
            async move {
                store
                    .put_object(p, o, PutCondition::IfAbsent, UNLIMITED)
                    .await
            }
        }))
        .await;
        let mut winners = Vec::new();
        for (o, result) in contenders.iter().zip(results) {
            match result {
                Ok(replaced) => {
                    assert_eq!(replaced, None);
                    winners.push(o.clone());
                }
                Err(e) => assert_eq!(e.code(), ErrorCode::Conflict, "{e}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one IfAbsent put wins");
        let stored = store.object(&p, "race", &key).await.unwrap();
        assert_eq!(stored.as_ref(), winners.first());
        expected.bytes += winners[0].size;
        expected.objects += 1;
        assert_eq!(store.usage(&p).await.unwrap(), expected);
    }
}

/// Concurrent puts near the quota never take the usage over it.
async fn concurrent_quota(store: &dyn MetaStore) {
    let p = project();
    store.create_bucket(&bucket(&p, "race")).await.unwrap();
    let run = |quota: Quota, tag: &'static str| {
        let p = &p;
        async move {
            let results = join_all((0..20).map(|i| async move {
                let o = object("race", &format!("{tag}/{i:02}"), 10);
                store.put_object(p, &o, PutCondition::Any, quota).await
            }))
            .await;
            let mut stored = 0;
            for result in results {
                match result {
                    Ok(replaced) => {
                        assert_eq!(replaced, None);
                        stored += 1;
                    }
                    Err(e) => assert_eq!(e.code(), ErrorCode::QuotaExceeded, "{e}"),
                }
            }
            stored
        }
    };

    // Room for 10 objects' bytes.
    let by_bytes = Quota {
        max_bytes: 105,
        max_objects: 1_000,
    };
    assert_eq!(run(by_bytes, "bytes").await, 10);
    assert_eq!(store.usage(&p).await.unwrap(), usage(100, 10));
    assert_eq!(keys(store, &p, "race", "bytes/", None, 100).await.len(), 10);

    // Room for 7 more objects.
    let by_objects = Quota {
        max_bytes: u64::MAX,
        max_objects: 17,
    };
    assert_eq!(run(by_objects, "objects").await, 7);
    assert_eq!(store.usage(&p).await.unwrap(), usage(170, 17));
    assert_eq!(
        keys(store, &p, "race", "objects/", None, 100).await.len(),
        7
    );

    // Concurrent deletes and replacements keep the usage exact.
    let listed = store.list_objects(&p, "race", "", None, 100).await.unwrap();
    let results = join_all(listed.iter().enumerate().map(|(i, o)| {
        let p = &p;
        async move {
            if i % 2 == 0 {
                store.delete_object(p, "race", &o.key).await.map(|_| ())
            } else {
                let smaller = object("race", &o.key, 3);
                store
                    .put_object(p, &smaller, PutCondition::Any, UNLIMITED)
                    .await
                    .map(|_| ())
            }
        }
    }))
    .await;
    for result in results {
        result.expect("concurrent delete or replace");
    }
    let left = store.list_objects(&p, "race", "", None, 100).await.unwrap();
    let bytes: u64 = left.iter().map(|o| o.size).sum();
    assert_eq!(left.len(), 8);
    assert_eq!(
        store.usage(&p).await.unwrap(),
        usage(bytes, left.len() as u64)
    );
}
