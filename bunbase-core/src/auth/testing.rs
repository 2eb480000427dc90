//! The conformance suite every identity store must pass (both traits).
//!
//! Call [`run`] with a factory for a fresh (or shared) store; checks use
//! random ids and emails so a shared database is fine.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::model::{
    Account, ApiKey, Email, EndUser, KeyKind, Rotation, Session, SigningKey, SubjectKind,
};
use crate::ErrorCode;
use crate::id::{ProjectId, random_hex};
use crate::platform::{Member, Project, Role};

pub use super::store::IdentityStore;

pub type StoreFuture = Pin<Box<dyn Future<Output = Arc<dyn IdentityStore>> + Send>>;

pub async fn run(make: &(dyn Fn() -> StoreFuture + Send + Sync)) {
    macro_rules! check {
        ($name:ident) => {
            eprintln!("identity store conformance: {}", stringify!($name));
            $name(make().await).await;
        };
    }
    check!(accounts_are_unique_by_email);
    check!(the_first_account_is_the_earliest);
    check!(end_users_are_isolated_per_project);
    check!(users_page_by_cursor);
    check!(refresh_tokens_rotate_once);
    check!(reused_refresh_tokens_revoke_the_session);
    check!(expired_and_revoked_sessions_do_not_rotate);
    check!(concurrent_rotations_have_one_winner);
    check!(sessions_are_revoked_per_subject);
    check!(api_keys_are_per_project);
    check!(signing_keys_are_kept_newest_first);
    check!(projects_and_members);
    check!(deleting_a_project_removes_its_data);
    check!(deleting_a_user_ends_its_sessions);
}

fn id(prefix: &str) -> String {
    format!("{prefix}_{}", random_hex(8))
}

fn email() -> Email {
    Email::parse(&format!("{}@example.com", random_hex(6))).unwrap_or_else(|e| panic!("{e}"))
}

fn project_id() -> ProjectId {
    ProjectId::new(format!("p-{}", random_hex(5))).unwrap_or_else(|e| panic!("{e}"))
}

fn account() -> Account {
    Account {
        id: id("acc"),
        email: email(),
        password_hash: "$argon2id$placeholder".into(),
        created_at: 1,
    }
}

fn user(project: &ProjectId, email: &Email) -> EndUser {
    EndUser {
        id: id("usr"),
        project: project.clone(),
        email: email.clone(),
        password_hash: "h".into(),
        created_at: 1,
    }
}

fn session(
    kind: SubjectKind,
    subject: &str,
    project: Option<&ProjectId>,
    expires_at: u64,
) -> Session {
    Session {
        id: id("ses"),
        kind,
        subject: subject.to_string(),
        project: project.cloned(),
        created_at: 1,
        expires_at,
        revoked_at: None,
    }
}

const FAR: u64 = u64::MAX / 4;

async fn new_project(store: &dyn IdentityStore, owner: &Account) -> Project {
    let project = Project {
        id: project_id(),
        name: "Test".into(),
        created_at: 10,
    };
    let member = Member {
        project: project.id.clone(),
        account_id: owner.id.clone(),
        email: owner.email.to_string(),
        role: Role::Owner,
        added_at: 10,
    };
    store
        .create_project(&project, &member)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    project
}

fn key(project: &ProjectId, kind: KeyKind) -> ApiKey {
    ApiKey {
        id: id("key"),
        project: project.clone(),
        name: "ci".into(),
        kind,
        hash: random_hex(32),
        hint: "bb_sk_abcd…".into(),
        created_at: 5,
        last_used_at: None,
        revoked_at: None,
    }
}

async fn accounts_are_unique_by_email(store: Arc<dyn IdentityStore>) {
    let a = account();
    store.create_account(&a).await.unwrap();
    let mut twin = account();
    twin.email = a.email.clone();
    assert_eq!(
        store.create_account(&twin).await.unwrap_err().code(),
        ErrorCode::AlreadyExists
    );
    assert_eq!(store.account(&a.id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(
        store.account_by_email(&a.email).await.unwrap().as_ref(),
        Some(&a)
    );
    assert!(store.account_by_email(&email()).await.unwrap().is_none());
    store.set_account_password(&a.id, "new-hash").await.unwrap();
    assert_eq!(
        store.account(&a.id).await.unwrap().unwrap().password_hash,
        "new-hash"
    );
    assert!(store.account("acc_missing").await.unwrap().is_none());
}

async fn the_first_account_is_the_earliest(store: Arc<dyn IdentityStore>) {
    let mut late = account();
    late.created_at = 5;
    store.create_account(&late).await.unwrap();
    assert!(store.first_account().await.unwrap().is_some());
    // Other checks' accounts were made at 1; these two at 0, the same
    // millisecond: the smaller id wins.
    let (mut a, mut b) = (account(), account());
    a.created_at = 0;
    b.created_at = 0;
    a.id = "acc_0b".into();
    b.id = "acc_0a".into();
    store.create_account(&a).await.unwrap();
    assert_eq!(
        store.first_account().await.unwrap().as_deref(),
        Some("acc_0b")
    );
    store.create_account(&b).await.unwrap();
    assert_eq!(
        store.first_account().await.unwrap().as_deref(),
        Some("acc_0a")
    );
}

async fn end_users_are_isolated_per_project(store: Arc<dyn IdentityStore>) {
    let owner = account();
    store.create_account(&owner).await.unwrap();
    let (p1, p2) = (
        new_project(&*store, &owner).await,
        new_project(&*store, &owner).await,
    );
    let shared = email();
    let u1 = user(&p1.id, &shared);
    let u2 = user(&p2.id, &shared);
    store.create_user(&u1).await.unwrap();
    store.create_user(&u2).await.unwrap();
    let dup = user(&p1.id, &shared);
    assert_eq!(
        store.create_user(&dup).await.unwrap_err().code(),
        ErrorCode::AlreadyExists
    );
    assert_eq!(
        store
            .user_by_email(&p1.id, &shared)
            .await
            .unwrap()
            .unwrap()
            .id,
        u1.id
    );
    assert_eq!(
        store
            .user_by_email(&p2.id, &shared)
            .await
            .unwrap()
            .unwrap()
            .id,
        u2.id
    );
    assert!(
        store.user(&p2.id, &u1.id).await.unwrap().is_none(),
        "ids don't cross projects"
    );
    assert!(!store.delete_user(&p2.id, &u1.id).await.unwrap());
    store.set_user_password(&p1.id, &u1.id, "h2").await.unwrap();
    assert_eq!(
        store
            .user(&p1.id, &u1.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "h2"
    );
    assert_eq!(
        store
            .user(&p2.id, &u2.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "h"
    );
}

async fn users_page_by_cursor(store: Arc<dyn IdentityStore>) {
    let owner = account();
    store.create_account(&owner).await.unwrap();
    let p = new_project(&*store, &owner).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let u = user(&p.id, &email());
        ids.push(u.id.clone());
        store.create_user(&u).await.unwrap();
    }
    ids.sort();
    let first = store.users(&p.id, None, 2).await.unwrap();
    assert_eq!(
        first.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        ids[..2]
    );
    let rest = store.users(&p.id, Some(&ids[1]), 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        ids[2..]
    );
}

async fn refresh_tokens_rotate_once(store: Arc<dyn IdentityStore>) {
    let s = session(SubjectKind::Account, "acc_x", None, FAR);
    let (t1, t2, t3) = (random_hex(16), random_hex(16), random_hex(16));
    store.create_session(&s, &t1).await.unwrap();
    assert_eq!(store.session(&s.id).await.unwrap().as_ref(), Some(&s));
    assert_eq!(
        store.session_by_refresh(&t1).await.unwrap().unwrap().id,
        s.id
    );
    match store.rotate_refresh(&t1, &t2, 100).await.unwrap() {
        Rotation::Rotated(got) => assert_eq!(got.id, s.id),
        other => panic!("{other:?}"),
    }
    match store.rotate_refresh(&t2, &t3, 101).await.unwrap() {
        Rotation::Rotated(got) => assert_eq!(got.id, s.id),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.session_by_refresh(&t2).await.unwrap().unwrap().id,
        s.id,
        "spent tokens still map"
    );
    assert_eq!(
        store
            .rotate_refresh(&random_hex(16), &random_hex(16), 102)
            .await
            .unwrap(),
        Rotation::Unknown
    );
}

async fn reused_refresh_tokens_revoke_the_session(store: Arc<dyn IdentityStore>) {
    let s = session(SubjectKind::Account, "acc_y", None, FAR);
    let (t1, t2) = (random_hex(16), random_hex(16));
    store.create_session(&s, &t1).await.unwrap();
    assert!(matches!(
        store.rotate_refresh(&t1, &t2, 100).await.unwrap(),
        Rotation::Rotated(_)
    ));
    // The stolen old token is replayed.
    match store
        .rotate_refresh(&t1, &random_hex(16), 200)
        .await
        .unwrap()
    {
        Rotation::Reused { session_id } => assert_eq!(session_id, s.id),
        other => panic!("{other:?}"),
    }
    let revoked = store.session(&s.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(200));
    // The current token of that family no longer works either.
    assert_eq!(
        store
            .rotate_refresh(&t2, &random_hex(16), 201)
            .await
            .unwrap(),
        Rotation::Unknown
    );
}

async fn expired_and_revoked_sessions_do_not_rotate(store: Arc<dyn IdentityStore>) {
    let expired = session(SubjectKind::Account, "acc_z", None, 50);
    let t = random_hex(16);
    store.create_session(&expired, &t).await.unwrap();
    assert_eq!(
        store
            .rotate_refresh(&t, &random_hex(16), 100)
            .await
            .unwrap(),
        Rotation::Unknown
    );
    let live = session(SubjectKind::Account, "acc_z", None, FAR);
    let t = random_hex(16);
    store.create_session(&live, &t).await.unwrap();
    assert!(store.revoke_session(&live.id, 100).await.unwrap());
    assert!(
        !store.revoke_session(&live.id, 101).await.unwrap(),
        "already revoked"
    );
    assert_eq!(
        store
            .rotate_refresh(&t, &random_hex(16), 102)
            .await
            .unwrap(),
        Rotation::Unknown
    );
}

async fn concurrent_rotations_have_one_winner(store: Arc<dyn IdentityStore>) {
    let s = session(SubjectKind::Account, "acc_c", None, FAR);
    let t = random_hex(16);
    store.create_session(&s, &t).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            store
                .rotate_refresh(&t, &random_hex(16), 100)
                .await
                .unwrap()
        }));
    }
    let mut rotated = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), Rotation::Rotated(_)) {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1, "a refresh token is spent exactly once");
}

async fn sessions_are_revoked_per_subject(store: Arc<dyn IdentityStore>) {
    let owner = account();
    store.create_account(&owner).await.unwrap();
    let project = new_project(&*store, &owner).await;
    let subject = id("acc");
    let a = session(SubjectKind::Account, &subject, None, FAR);
    let b = session(SubjectKind::Account, &subject, None, FAR);
    let other = session(SubjectKind::Account, &id("acc"), None, FAR);
    let same_id_user = session(SubjectKind::EndUser, &subject, Some(&project.id), FAR);
    for s in [&a, &b, &other, &same_id_user] {
        store.create_session(s, &random_hex(16)).await.unwrap();
    }
    assert_eq!(
        store
            .revoke_sessions(SubjectKind::Account, &subject, 100)
            .await
            .unwrap(),
        2
    );
    assert!(
        store
            .session(&other.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    assert!(
        store
            .session(&same_id_user.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    assert_eq!(
        store
            .revoke_sessions(SubjectKind::Account, &subject, 101)
            .await
            .unwrap(),
        0
    );
}

async fn api_keys_are_per_project(store: Arc<dyn IdentityStore>) {
    let owner = account();
    store.create_account(&owner).await.unwrap();
    let (p1, p2) = (
        new_project(&*store, &owner).await,
        new_project(&*store, &owner).await,
    );
    let k1 = key(&p1.id, KeyKind::Secret);
    let k2 = key(&p1.id, KeyKind::Publishable);
    let k3 = key(&p2.id, KeyKind::Secret);
    for k in [&k1, &k2, &k3] {
        store.create_key(k).await.unwrap();
    }
    assert_eq!(
        store.key_by_hash(&k1.hash).await.unwrap().as_ref(),
        Some(&k1)
    );
    assert!(store.key_by_hash(&random_hex(32)).await.unwrap().is_none());
    let listed: Vec<String> = store
        .keys(&p1.id)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&k1.id) && listed.contains(&k2.id));
    assert!(
        !store.revoke_key(&p2.id, &k1.id, 100).await.unwrap(),
        "another project's key"
    );
    assert!(store.revoke_key(&p1.id, &k1.id, 100).await.unwrap());
    assert!(
        !store.revoke_key(&p1.id, &k1.id, 101).await.unwrap(),
        "already revoked"
    );
    assert_eq!(
        store
            .key_by_hash(&k1.hash)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(100)
    );
    store.touch_key(&k2.id, 77).await.unwrap();
    assert_eq!(
        store
            .key_by_hash(&k2.hash)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(77)
    );
}

async fn signing_keys_are_kept_newest_first(store: Arc<dyn IdentityStore>) {
    let base = crate::id::now_micros();
    let mk = |offset: u64| SigningKey {
        kid: id("k"),
        private_pkcs8: vec![1, 2, 3],
        public_key: vec![4, 5],
        created_at: base + offset,
    };
    let (older, newer) = (mk(1), mk(2));
    store.add_signing_key(&older).await.unwrap();
    store.add_signing_key(&newer).await.unwrap();
    let keys = store.signing_keys().await.unwrap();
    let pos = |k: &SigningKey| keys.iter().position(|x| x.kid == k.kid).unwrap();
    assert!(pos(&newer) < pos(&older));
    assert_eq!(keys[pos(&newer)], newer);
    assert!(store.remove_signing_key(&older.kid).await.unwrap());
    assert!(!store.remove_signing_key(&older.kid).await.unwrap());
    store.remove_signing_key(&newer.kid).await.unwrap();
}

async fn projects_and_members(store: Arc<dyn IdentityStore>) {
    let (owner, dev) = (account(), account());
    store.create_account(&owner).await.unwrap();
    store.create_account(&dev).await.unwrap();
    let p = new_project(&*store, &owner).await;
    assert_eq!(store.project(&p.id).await.unwrap().as_ref(), Some(&p));
    assert_eq!(
        store
            .create_project(&p, &store.member(&p.id, &owner.id).await.unwrap().unwrap())
            .await
            .unwrap_err()
            .code(),
        ErrorCode::AlreadyExists
    );
    let member = Member {
        project: p.id.clone(),
        account_id: dev.id.clone(),
        email: dev.email.to_string(),
        role: Role::Developer,
        added_at: 20,
    };
    store.put_member(&member).await.unwrap();
    let mut promoted = member.clone();
    promoted.role = Role::Admin;
    store.put_member(&promoted).await.unwrap();
    assert_eq!(
        store.member(&p.id, &dev.id).await.unwrap().unwrap().role,
        Role::Admin
    );
    let members = store.members(&p.id).await.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[0].account_id, owner.id, "ordered by join time");
    let mine = store.projects_of(&dev.id).await.unwrap();
    assert_eq!(mine, vec![(p.clone(), Role::Admin)]);
    assert!(store.rename_project(&p.id, "Renamed").await.unwrap());
    assert_eq!(store.project(&p.id).await.unwrap().unwrap().name, "Renamed");
    assert!(!store.rename_project(&project_id(), "x").await.unwrap());
    assert!(store.remove_member(&p.id, &dev.id).await.unwrap());
    assert!(store.projects_of(&dev.id).await.unwrap().is_empty());
    let orphan = Member {
        project: project_id(),
        ..member
    };
    assert_eq!(
        store.put_member(&orphan).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
}

async fn deleting_a_project_removes_its_data(store: Arc<dyn IdentityStore>) {
    let owner = account();
    store.create_account(&owner).await.unwrap();
    let (doomed, kept) = (
        new_project(&*store, &owner).await,
        new_project(&*store, &owner).await,
    );
    let k = key(&doomed.id, KeyKind::Secret);
    store.create_key(&k).await.unwrap();
    let kept_key = key(&kept.id, KeyKind::Secret);
    store.create_key(&kept_key).await.unwrap();
    let u = user(&doomed.id, &email());
    store.create_user(&u).await.unwrap();
    let s = session(SubjectKind::EndUser, &u.id, Some(&doomed.id), FAR);
    let t = random_hex(16);
    store.create_session(&s, &t).await.unwrap();
    // Far in the future, so other checks' deletions (sharing the store)
    // come before it.
    let at = u64::MAX / 4;
    assert!(store.delete_project(&doomed.id, at).await.unwrap());
    assert!(!store.delete_project(&doomed.id, at + 5).await.unwrap());
    assert_eq!(
        store.deleted_projects(at, 10).await.unwrap(),
        vec![(doomed.id.clone(), at)],
        "the deletion is recorded once"
    );
    assert!(store.deleted_projects(at + 1, 10).await.unwrap().is_empty());
    let earlier = store.deleted_projects(0, 10_000).await.unwrap();
    assert!(earlier.windows(2).all(|w| w[0].1 <= w[1].1), "oldest first");
    assert!(earlier.iter().any(|(id, _)| id == &doomed.id));
    assert!(!earlier.iter().any(|(id, _)| id == &kept.id));
    assert!(store.project(&doomed.id).await.unwrap().is_none());
    assert!(store.members(&doomed.id).await.unwrap().is_empty());
    assert!(store.key_by_hash(&k.hash).await.unwrap().is_none());
    assert!(store.user(&doomed.id, &u.id).await.unwrap().is_none());
    assert_eq!(
        store
            .rotate_refresh(&t, &random_hex(16), 100)
            .await
            .unwrap(),
        Rotation::Unknown
    );
    assert!(
        store
            .session(&s.id)
            .await
            .unwrap()
            .is_none_or(|s| s.revoked_at.is_some())
    );
    assert!(
        store.key_by_hash(&kept_key.hash).await.unwrap().is_some(),
        "other projects untouched"
    );
    assert_eq!(store.projects_of(&owner.id).await.unwrap().len(), 1);
}

async fn deleting_a_user_ends_its_sessions(store: Arc<dyn IdentityStore>) {
    let owner = account();
    store.create_account(&owner).await.unwrap();
    let p = new_project(&*store, &owner).await;
    let u = user(&p.id, &email());
    store.create_user(&u).await.unwrap();
    let s = session(SubjectKind::EndUser, &u.id, Some(&p.id), FAR);
    let t = random_hex(16);
    store.create_session(&s, &t).await.unwrap();
    assert!(store.delete_user(&p.id, &u.id).await.unwrap());
    assert!(store.user(&p.id, &u.id).await.unwrap().is_none());
    assert_eq!(
        store
            .rotate_refresh(&t, &random_hex(16), 100)
            .await
            .unwrap(),
        Rotation::Unknown
    );
    assert!(
        store
            .session(&s.id)
            .await
            .unwrap()
            .is_none_or(|s| !s.is_active(100))
    );
}
