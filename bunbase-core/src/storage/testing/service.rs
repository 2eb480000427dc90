//! The service-level suite: the whole storage service over one pairing of
//! a metadata store and a blob store (memory + memory, SQLite + files,
//! Postgres + S3): what users do, end to end, through the stores.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::ErrorCode;
use crate::auth::{Principal, PrincipalKind, Rights};
use crate::id::{ProjectId, random_hex};
use crate::storage::{
    Actor, BucketSettings, ByteStream, CompletedPart, Fetched, GetObject, ListQuery, ObjectPath,
    PartIn, PutCondition, PutObject, RangeSpec, Storage,
};

fn principal(project: &ProjectId) -> Principal {
    Principal {
        subject: "suite".into(),
        kind: PrincipalKind::SecretKey,
        project: project.clone(),
        rights: Rights::ALL,
    }
}

fn body(chunks: Vec<Bytes>) -> ByteStream {
    Box::pin(futures_util::stream::iter(chunks.into_iter().map(Ok)))
}

fn put(length: u64) -> PutObject {
    PutObject {
        content_type: Some("application/octet-stream".into()),
        length: Some(length),
        metadata: BTreeMap::new(),
        condition: PutCondition::Any,
    }
}

async fn read(storage: &Storage, who: &Principal, at: &ObjectPath, range: Option<&str>) -> Vec<u8> {
    let get = GetObject {
        range: range.and_then(|r| RangeSpec::parse(r).unwrap()),
        ..GetObject::default()
    };
    match storage
        .get_object(Actor::Principal(who), &who.project, at, get)
        .await
        .unwrap()
    {
        Fetched::Body { mut body, .. } => {
            let mut out = Vec::new();
            while let Some(chunk) = body.next().await {
                out.extend_from_slice(&chunk.unwrap());
            }
            out
        }
        Fetched::NotModified(_) => panic!("not modified"),
    }
}

pub async fn suite(storage: &Storage) {
    let project = ProjectId::new(format!("s-{}", random_hex(6))).unwrap();
    let who = principal(&project);
    let actor = Actor::Principal(&who);
    storage
        .create_bucket(&who, &project, "suite", BucketSettings::default())
        .await
        .unwrap();

    // A streamed object in many chunks, then ranges of it.
    let chunks: Vec<Bytes> = (0..64u8).map(|i| Bytes::from(vec![i; 16 * 1024])).collect();
    let size = 64 * 16 * 1024;
    let at = ObjectPath::new("suite", "dir/many-chunks.bin").unwrap();
    let info = storage
        .put_object(actor, &project, &at, put(size), body(chunks))
        .await
        .unwrap();
    assert_eq!(info.size, size);
    let whole = read(storage, &who, &at, None).await;
    assert_eq!(whole.len() as u64, size);
    assert_eq!(whole[16 * 1024], 1);
    assert_eq!(
        read(storage, &who, &at, Some("bytes=16383-16384")).await,
        [0, 1]
    );
    assert_eq!(read(storage, &who, &at, Some("bytes=-1")).await, [63]);

    // A body that fails half way stores nothing and keeps the old object.
    let failing: ByteStream = Box::pin(futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"partial")),
        Err(crate::Error::invalid("the client went away")),
    ]));
    let err = storage
        .put_object(actor, &project, &at, put(100), failing)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert_eq!(read(storage, &who, &at, None).await.len() as u64, size);
    let short = storage
        .put_object(
            actor,
            &project,
            &at,
            put(10),
            body(vec![Bytes::from_static(b"abc")]),
        )
        .await
        .unwrap_err();
    assert_eq!(short.code(), ErrorCode::InvalidInput);
    let usage = storage.usage(&who, &project).await.unwrap().0;
    assert_eq!((usage.bytes, usage.objects), (size, 1));

    // Replace, copy, move, list.
    let small = ObjectPath::new("suite", "dir/small.txt").unwrap();
    storage
        .put_object(
            actor,
            &project,
            &small,
            put(5),
            body(vec![Bytes::from_static(b"hello")]),
        )
        .await
        .unwrap();
    let copy = ObjectPath::new("suite", "copies/small.txt").unwrap();
    storage
        .copy_object(actor, &project, &small, &copy, false)
        .await
        .unwrap();
    storage
        .put_object(
            actor,
            &project,
            &small,
            put(3),
            body(vec![Bytes::from_static(b"new")]),
        )
        .await
        .unwrap();
    assert_eq!(read(storage, &who, &copy, None).await, b"hello");
    assert_eq!(read(storage, &who, &small, None).await, b"new");
    let page = storage
        .list_objects(
            actor,
            &project,
            "suite",
            &ListQuery {
                delimiter: Some("/".into()),
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.prefixes, ["copies/", "dir/"]);
    assert_eq!(page.next, None);
    // A page that ends exactly at the last folder says it is the last; one
    // that does not gives the cursor of the rest.
    let folders = |limit, cursor: Option<String>| ListQuery {
        delimiter: Some("/".into()),
        limit,
        cursor,
        ..ListQuery::default()
    };
    let exact = storage
        .list_objects(actor, &project, "suite", &folders(2, None))
        .await
        .unwrap();
    assert_eq!((exact.prefixes.len(), exact.next.clone()), (2, None));
    let first = storage
        .list_objects(actor, &project, "suite", &folders(1, None))
        .await
        .unwrap();
    assert_eq!(first.prefixes, ["copies/"]);
    let rest = storage
        .list_objects(actor, &project, "suite", &folders(1, first.next))
        .await
        .unwrap();
    assert_eq!((rest.prefixes, rest.next), (vec!["dir/".to_string()], None));

    // Multipart: two parts of 5 MiB and a small last one.
    let big = ObjectPath::new("suite", "big.bin").unwrap();
    let upload = storage
        .create_upload(&who, &project, &big, None, BTreeMap::new())
        .await
        .unwrap();
    let five = 5 * 1024 * 1024u64;
    let mut parts = Vec::new();
    for (number, fill, len) in [(1u32, 1u8, five), (2, 2, five), (3, 3, 10)] {
        let part = storage
            .upload_part(
                &who,
                &project,
                &big,
                &upload.id,
                PartIn {
                    number,
                    length: Some(len),
                },
                body(vec![Bytes::from(vec![fill; len as usize])]),
            )
            .await
            .unwrap();
        parts.push(CompletedPart {
            number,
            etag: part.etag,
        });
    }
    let missing = storage
        .complete_upload(
            &who,
            &project,
            &big,
            &upload.id,
            &[CompletedPart {
                number: 4,
                etag: "x".into(),
            }],
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code(), ErrorCode::InvalidInput);
    let done = storage
        .complete_upload(&who, &project, &big, &upload.id, &parts)
        .await
        .unwrap();
    assert_eq!(done.size, 2 * five + 10);
    assert!(done.etag.ends_with("-3"));
    let edges = read(
        storage,
        &who,
        &big,
        Some(&format!("bytes={}-{}", five - 1, five)),
    )
    .await;
    assert_eq!(edges, [1, 2]);
    assert_eq!(read(storage, &who, &big, Some("bytes=-10")).await, [3; 10]);

    // An aborted upload leaves nothing; a non-empty bucket is kept.
    let aborted = storage
        .create_upload(
            &who,
            &project,
            &ObjectPath::new("suite", "gone.bin").unwrap(),
            None,
            BTreeMap::new(),
        )
        .await
        .unwrap();
    storage
        .abort_upload(
            &who,
            &project,
            &ObjectPath::new("suite", "gone.bin").unwrap(),
            &aborted.id,
        )
        .await
        .unwrap();
    let conflict = storage
        .delete_bucket(&who, &project, "suite", false)
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), ErrorCode::Conflict);

    // Deleting the project's data removes every object and bucket.
    storage.purge(&project).await.unwrap();
    assert!(storage.buckets(&who, &project).await.unwrap().is_empty());
    let usage = storage.usage(&who, &project).await.unwrap().0;
    assert_eq!((usage.bytes, usage.objects), (0, 0));
}
