//! The conformance suite every [`KmsStore`] must pass (memory, SQLite,
//! Postgres), plus the service end to end on it.

use std::sync::Arc;

use super::audit::{self, AuditEntry};
use super::crypto::Algorithm;
use super::master::MasterKey;
use super::model::{AuditQuery, Key, KeyState, KeyVersion};
use super::service::{Kms, KmsLimits};
use super::store::KmsStore;
use crate::ErrorCode;
use crate::auth::{Principal, PrincipalKind, Rights};
use crate::id::{ProjectId, random_hex};

fn project() -> ProjectId {
    ProjectId::new(format!("p{}", random_hex(5))).unwrap_or_else(|e| panic!("{e}"))
}

fn key(project: &ProjectId, name: &str) -> Key {
    Key {
        project: project.clone(),
        name: name.into(),
        algorithm: Algorithm::Aes256Gcm,
        state: KeyState::Enabled,
        primary: 1,
        versions: vec![version(1)],
        rotation_period: None,
        last_rotated_at: 1_000,
        deletion_at: None,
        created_at: 1_000,
        revision: 1,
        end_users: false,
    }
}

fn version(n: u32) -> KeyVersion {
    KeyVersion {
        version: n,
        created_at: 1_000 + u64::from(n),
        wrapped: vec![n as u8; 44],
        public_key: n.is_multiple_of(2).then(|| vec![7; 32]),
    }
}

fn entry(project: &ProjectId, at: u64, key: Option<&str>) -> AuditEntry {
    AuditEntry {
        at,
        project: project.to_string(),
        caller: "tester".into(),
        key: key.map(str::to_string),
        operation: "encrypt".into(),
        result: "ok".into(),
    }
}

/// The names of `project`'s keys due by `now`, sorted.
async fn due(store: &dyn KmsStore, project: &ProjectId, now: u64) -> Vec<String> {
    let mut names: Vec<String> = store
        .keys_due(now)
        .await
        .unwrap()
        .into_iter()
        .filter(|k| &k.project == project)
        .map(|k| k.name)
        .collect();
    names.sort();
    names
}

/// The sequence numbers an audit query returns.
async fn seqs(store: &dyn KmsStore, project: &ProjectId, q: AuditQuery) -> Vec<u64> {
    store
        .audit(project, &q)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.seq)
        .collect()
}

pub async fn run(store: Arc<dyn KmsStore>) {
    master_key_id(&*store).await;
    keys(&*store).await;
    secrets(&*store).await;
    audit_log(&*store).await;
    concurrent_audit(store.clone()).await;
    service_end_to_end(store).await;
}

async fn master_key_id(store: &dyn KmsStore) {
    store.set_master_key_id("first").await.unwrap();
    store.set_master_key_id("second").await.unwrap();
    assert_eq!(
        store.master_key_id().await.unwrap().as_deref(),
        Some("second")
    );
}

async fn keys(store: &dyn KmsStore) {
    let (a, b) = (project(), project());
    store.create_key(&key(&a, "k")).await.unwrap();
    store.create_key(&key(&b, "k")).await.unwrap();
    assert_eq!(
        store.create_key(&key(&a, "k")).await.unwrap_err().code(),
        ErrorCode::AlreadyExists
    );
    let stored = store.key(&a, "k").await.unwrap().expect("stored");
    assert_eq!(
        stored,
        key(&a, "k"),
        "everything round-trips, material included"
    );
    assert!(store.key(&a, "other").await.unwrap().is_none());
    store.create_key(&key(&a, "a-first")).await.unwrap();
    let names: Vec<String> = store
        .keys(&a)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["a-first", "k"]);

    // Compare-and-set updates add versions; stale ones are refused.
    let mut next = stored.clone();
    next.end_users = true;
    next.versions.push(version(2));
    next.primary = 2;
    next.revision = 2;
    store.update_key(&next).await.unwrap();
    let stale = Key {
        state: KeyState::Disabled,
        ..next.clone()
    };
    assert_eq!(
        store.update_key(&stale).await.unwrap_err().code(),
        ErrorCode::Conflict
    );
    let now = store.key(&a, "k").await.unwrap().unwrap();
    assert_eq!(
        (now.primary, now.versions.len(), now.state),
        (2, 2, KeyState::Enabled)
    );
    assert_eq!(now.versions[1], version(2));
    assert!(now.end_users, "grants round-trip");
    // Re-wrapping replaces one version's material and nothing else.
    store
        .rewrap_key_version(&a, "k", 1, vec![42; 44])
        .await
        .unwrap();
    let rewrapped = store.key(&a, "k").await.unwrap().unwrap();
    assert_eq!(rewrapped.versions[0].wrapped, vec![42; 44]);
    assert_eq!(rewrapped.versions[1], version(2));
    assert_eq!(
        store
            .rewrap_key_version(&a, "k", 9, vec![1])
            .await
            .unwrap_err()
            .code(),
        ErrorCode::NotFound
    );
    assert!(
        store
            .all_keys()
            .await
            .unwrap()
            .iter()
            .any(|k| k.project == b)
    );
    assert_eq!(
        store.key(&b, "k").await.unwrap().unwrap().versions.len(),
        1,
        "isolated"
    );

    // Due: a deletion whose time came, a rotation whose period passed.
    let mut deleting = key(&a, "deleting");
    deleting.state = KeyState::PendingDeletion;
    deleting.deletion_at = Some(5_000);
    store.create_key(&deleting).await.unwrap();
    let mut rotating = key(&a, "rotating");
    rotating.rotation_period = Some(3);
    store.create_key(&rotating).await.unwrap();
    assert!(due(store, &a, 3_999).await.is_empty());
    assert_eq!(due(store, &a, 4_000).await, ["rotating"]);
    assert_eq!(due(store, &a, 5_000).await, ["deleting", "rotating"]);
    assert!(
        !store.delete_key(&a, "deleting", 7).await.unwrap(),
        "a stale revision keeps the key"
    );
    assert!(store.delete_key(&a, "deleting", 1).await.unwrap());
    assert!(!store.delete_key(&a, "deleting", 1).await.unwrap());
    assert!(store.key(&a, "deleting").await.unwrap().is_none());
}

async fn secrets(store: &dyn KmsStore) {
    let (a, b) = (project(), project());
    store.put_secret(&a, "s", 1, vec![1; 40], 10).await.unwrap();
    store.put_secret(&a, "s", 2, vec![2; 40], 20).await.unwrap();
    assert_eq!(
        store
            .put_secret(&a, "s", 2, vec![9; 40], 30)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Conflict,
        "a version once"
    );
    assert_eq!(
        store
            .put_secret(&a, "t", 2, vec![9; 40], 30)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Conflict,
        "versions start at 1"
    );
    store
        .rewrap_secret_version(&a, "s", 1, vec![1; 40])
        .await
        .unwrap();
    assert!(
        store
            .all_secrets()
            .await
            .unwrap()
            .iter()
            .any(|(p, n, v)| p == &a && n == "s" && v.version == 2)
    );
    let latest = store.secret(&a, "s", None).await.unwrap().unwrap();
    assert_eq!((latest.version, latest.wrapped.clone()), (2, vec![2; 40]));
    assert_eq!(
        store
            .secret(&a, "s", Some(1))
            .await
            .unwrap()
            .unwrap()
            .wrapped,
        vec![1; 40]
    );
    assert!(store.secret(&a, "s", Some(3)).await.unwrap().is_none());
    assert!(
        store.secret(&b, "s", None).await.unwrap().is_none(),
        "isolated"
    );
    let list = store.secrets(&a).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (
            list[0].latest_version,
            list[0].created_at,
            list[0].updated_at
        ),
        (2, 10, 20)
    );
    assert!(store.delete_secret(&a, "s").await.unwrap());
    assert!(store.secret(&a, "s", None).await.unwrap().is_none());
    assert!(store.secrets(&a).await.unwrap().is_empty());
}

async fn audit_log(store: &dyn KmsStore) {
    let (a, b) = (project(), project());
    for i in 0..5u64 {
        store
            .append_audit(entry(
                &a,
                100 + i,
                Some(if i.is_multiple_of(2) { "even" } else { "odd" }),
            ))
            .await
            .unwrap();
    }
    store.append_audit(entry(&b, 100, None)).await.unwrap();
    let all = store
        .audit(
            &a,
            &AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(audit::verify(&all, (0, audit::GENESIS)).is_ok());
    assert_eq!(
        seqs(
            store,
            &a,
            AuditQuery {
                from: Some(102),
                to: Some(104),
                limit: 10,
                ..Default::default()
            }
        )
        .await,
        [3, 4]
    );
    assert_eq!(
        seqs(
            store,
            &a,
            AuditQuery {
                key: Some("odd".into()),
                limit: 10,
                ..Default::default()
            }
        )
        .await,
        [2, 4]
    );
    assert_eq!(
        seqs(
            store,
            &a,
            AuditQuery {
                after: Some(3),
                limit: 10,
                ..Default::default()
            }
        )
        .await,
        [4, 5]
    );
    assert_eq!(
        seqs(
            store,
            &a,
            AuditQuery {
                limit: 2,
                ..Default::default()
            }
        )
        .await,
        [1, 2]
    );
    let other = store
        .audit(
            &b,
            &AuditQuery {
                limit: 10,
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(
        other[0].prev_hash,
        audit::GENESIS,
        "each project has its own chain"
    );
}

async fn concurrent_audit(store: Arc<dyn KmsStore>) {
    let p = project();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let (store, p) = (store.clone(), p.clone());
            tokio::spawn(async move { store.append_audit(entry(&p, i, None)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let all = store
        .audit(
            &p,
            &AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 12);
    assert!(
        audit::verify(&all, (0, audit::GENESIS)).is_ok(),
        "racing appends still chain"
    );
}

async fn service_end_to_end(store: Arc<dyn KmsStore>) {
    let master = Arc::new(MasterKey::parse(&"5a".repeat(32)).unwrap_or_else(|e| panic!("{e}")));
    let kms = Kms::new(
        store,
        master,
        KmsLimits::default(),
        Arc::new(super::KmsMetrics::unregistered()),
    );
    let p = project();
    let who = Principal {
        subject: "svc".into(),
        kind: PrincipalKind::SecretKey,
        project: p.clone(),
        rights: Rights::ALL,
    };
    kms.create_key(&who, &p, "data", Algorithm::Aes256Gcm, None)
        .await
        .unwrap();
    let old = kms
        .encrypt(&who, &p, "data", b"hello", b"ctx")
        .await
        .unwrap();
    kms.rotate(&who, &p, "data").await.unwrap();
    assert_eq!(
        &kms.decrypt(&who, &p, &old.ciphertext, b"ctx")
            .await
            .unwrap()
            .0[..],
        b"hello"
    );
    kms.create_key(&who, &p, "signer", Algorithm::EcdsaP256, None)
        .await
        .unwrap();
    let (sig, _) = kms.sign(&who, &p, "signer", b"m").await.unwrap();
    assert!(
        kms.verify(&who, &p, "signer", b"m", &sig, None)
            .await
            .unwrap()
    );
    kms.put_secret(&who, &p, "token", b"t0p").await.unwrap();
    assert_eq!(
        &kms.secret(&who, &p, "token", None).await.unwrap().0[..],
        b"t0p"
    );
    assert_eq!(kms.verify_audit(&who, &p).await.unwrap(), Ok(9));
}
