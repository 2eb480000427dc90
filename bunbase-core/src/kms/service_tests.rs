//! The KMS service on the memory store: every operation, every refusal.

use std::sync::Arc;

use super::adapters::memory::MemoryKms;
use super::crypto::Algorithm;
use super::master::MasterKey;
use super::model::{AuditQuery, KeyState};
use super::service::{Kms, KmsLimits};
use super::store::KmsStore;
use crate::ErrorCode;
use crate::auth::{Principal, PrincipalKind, Rights};
use crate::id::{ProjectId, now_millis};

fn project(name: &str) -> ProjectId {
    ProjectId::new(name).unwrap()
}

fn who(project_name: &str, kind: PrincipalKind, rights: Rights) -> Principal {
    Principal {
        subject: format!("{project_name}-{}", kind.as_str()),
        kind,
        project: project(project_name),
        rights,
    }
}

fn admin(p: &str) -> Principal {
    who(p, PrincipalKind::SecretKey, Rights::ALL)
}

fn kms_on(store: Arc<MemoryKms>, master: &str) -> Kms {
    Kms::new(
        store,
        Arc::new(MasterKey::parse(master).unwrap()),
        KmsLimits::default(),
        Arc::new(super::KmsMetrics::unregistered()),
    )
}

fn kms() -> (Kms, Arc<MemoryKms>) {
    let store = Arc::new(MemoryKms::new());
    (kms_on(store.clone(), &"ab".repeat(32)), store)
}

#[tokio::test]
async fn encrypt_decrypt_with_context_and_every_tampering_refused() {
    let (kms, _) = kms();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    kms.create_key(&a, &alpha, "orders", Algorithm::Aes256Gcm, None)
        .await
        .unwrap();
    let sealed = kms
        .encrypt(&a, &alpha, "orders", b"card 4242", b"order=1")
        .await
        .unwrap();
    assert_eq!((sealed.key.as_str(), sealed.version), ("orders", 1));
    let (plain, key, version) = kms
        .decrypt(&a, &alpha, &sealed.ciphertext, b"order=1")
        .await
        .unwrap();
    assert_eq!(
        (&plain[..], key.as_str(), version),
        (&b"card 4242"[..], "orders", 1)
    );

    let code = |r: Result<_, crate::Error>| r.map(|_| ()).unwrap_err().code();
    // Wrong context, altered bytes, truncated, garbage.
    assert_eq!(
        code(
            kms.decrypt(&a, &alpha, &sealed.ciphertext, b"order=2")
                .await
        ),
        ErrorCode::InvalidInput
    );
    let mut altered = sealed.ciphertext.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    assert_eq!(
        code(kms.decrypt(&a, &alpha, &altered, b"order=1").await),
        ErrorCode::InvalidInput
    );
    let cut = &sealed.ciphertext[..sealed.ciphertext.len() - 20];
    assert_eq!(
        code(kms.decrypt(&a, &alpha, cut, b"order=1").await),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        code(kms.decrypt(&a, &alpha, b"hello", b"").await),
        ErrorCode::InvalidInput
    );

    // Another project, even with a key of the same name, cannot open it.
    let (b, beta) = (admin("beta"), project("beta"));
    kms.create_key(&b, &beta, "orders", Algorithm::Aes256Gcm, None)
        .await
        .unwrap();
    assert_eq!(
        code(kms.decrypt(&b, &beta, &sealed.ciphertext, b"order=1").await),
        ErrorCode::InvalidInput
    );
    // Nor use alpha's key by naming alpha.
    assert_eq!(
        kms.encrypt(&b, &alpha, "orders", b"x", b"")
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PermissionDenied
    );
}

#[tokio::test]
async fn rotation_keeps_old_ciphertexts_and_reencrypt_moves_them() {
    let (kms, _) = kms();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    kms.create_key(&a, &alpha, "k", Algorithm::Aes256Gcm, None)
        .await
        .unwrap();
    let old = kms.encrypt(&a, &alpha, "k", b"v1 data", b"").await.unwrap();
    let info = kms.rotate(&a, &alpha, "k").await.unwrap();
    assert_eq!(info.primary_version, 2);
    assert_eq!(info.versions.len(), 2);
    let new = kms.encrypt(&a, &alpha, "k", b"v2 data", b"").await.unwrap();
    assert_eq!(new.version, 2);
    assert_eq!(
        &kms.decrypt(&a, &alpha, &old.ciphertext, b"")
            .await
            .unwrap()
            .0[..],
        b"v1 data"
    );
    let moved = kms
        .reencrypt(&a, &alpha, &old.ciphertext, b"", None)
        .await
        .unwrap();
    assert_eq!(moved.version, 2);
    assert_eq!(
        &kms.decrypt(&a, &alpha, &moved.ciphertext, b"")
            .await
            .unwrap()
            .0[..],
        b"v1 data"
    );
}

#[tokio::test]
async fn states_disable_enable_and_deletion_with_a_waiting_period() {
    let (kms, _) = kms();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    kms.create_key(&a, &alpha, "k", Algorithm::Aes256Gcm, None)
        .await
        .unwrap();
    let sealed = kms.encrypt(&a, &alpha, "k", b"x", b"").await.unwrap();
    kms.set_enabled(&a, &alpha, "k", false).await.unwrap();
    let err = kms.encrypt(&a, &alpha, "k", b"x", b"").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
    assert!(
        kms.decrypt(&a, &alpha, &sealed.ciphertext, b"")
            .await
            .is_err()
    );
    kms.set_enabled(&a, &alpha, "k", true).await.unwrap();
    assert!(
        kms.decrypt(&a, &alpha, &sealed.ciphertext, b"")
            .await
            .is_ok()
    );

    for days in [0, 6, 31] {
        let err = kms
            .schedule_deletion(&a, &alpha, "k", Some(days))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{days} days");
    }
    let info = kms
        .schedule_deletion(&a, &alpha, "k", Some(7))
        .await
        .unwrap();
    assert_eq!(info.state, KeyState::PendingDeletion);
    assert!(kms.encrypt(&a, &alpha, "k", b"x", b"").await.is_err());
    assert!(kms.set_enabled(&a, &alpha, "k", true).await.is_err());
    // Not yet due: nothing is deleted.
    assert_eq!(kms.run_due(now_millis()).await.unwrap(), (0, 0));
    let info = kms.cancel_deletion(&a, &alpha, "k").await.unwrap();
    assert_eq!(info.state, KeyState::Disabled);
    kms.schedule_deletion(&a, &alpha, "k", None).await.unwrap();
    let later = now_millis() + 31 * 24 * 3600 * 1000;
    assert_eq!(kms.run_due(later).await.unwrap(), (0, 1));
    assert_eq!(
        kms.key(&a, &alpha, "k").await.unwrap_err().code(),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn automatic_rotation_when_the_period_has_passed() {
    let (kms, _) = kms();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    assert!(
        kms.create_key(&a, &alpha, "short", Algorithm::Aes256Gcm, Some(60))
            .await
            .is_err(),
        "under a day"
    );
    kms.create_key(&a, &alpha, "k", Algorithm::Aes256Gcm, Some(24 * 3600))
        .await
        .unwrap();
    assert_eq!(kms.run_due(now_millis()).await.unwrap(), (0, 0));
    assert_eq!(
        kms.run_due(now_millis() + 25 * 3600 * 1000).await.unwrap(),
        (1, 0)
    );
    assert_eq!(kms.key(&a, &alpha, "k").await.unwrap().primary_version, 2);
}

#[tokio::test]
async fn data_keys_sign_verify_and_macs() {
    let (kms, _) = kms();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    kms.create_key(&a, &alpha, "enc", Algorithm::Aes256Gcm, None)
        .await
        .unwrap();
    let (plain, sealed) = kms.data_key(&a, &alpha, "enc", b"doc", 32).await.unwrap();
    assert_eq!(plain.len(), 32);
    assert_eq!(
        kms.decrypt(&a, &alpha, &sealed.ciphertext, b"doc")
            .await
            .unwrap()
            .0,
        plain
    );
    assert!(kms.data_key(&a, &alpha, "enc", b"", 8).await.is_err());

    for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256] {
        let name = alg.name();
        kms.create_key(&a, &alpha, name, alg, None).await.unwrap();
        let (sig, version) = kms.sign(&a, &alpha, name, b"msg").await.unwrap();
        assert!(
            kms.verify(&a, &alpha, name, b"msg", &sig, None)
                .await
                .unwrap()
        );
        assert!(
            !kms.verify(&a, &alpha, name, b"other", &sig, None)
                .await
                .unwrap()
        );
        kms.rotate(&a, &alpha, name).await.unwrap();
        assert!(
            kms.verify(&a, &alpha, name, b"msg", &sig, Some(version))
                .await
                .unwrap()
        );
        assert!(
            !kms.verify(&a, &alpha, name, b"msg", &sig, None)
                .await
                .unwrap(),
            "new version"
        );
        // A signing key does not encrypt.
        let err = kms.encrypt(&a, &alpha, name, b"x", b"").await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
    }
    kms.create_key(&a, &alpha, "mac", Algorithm::HmacSha256, None)
        .await
        .unwrap();
    let (tag, _) = kms.mac(&a, &alpha, "mac", b"msg").await.unwrap();
    assert!(
        kms.verify_mac(&a, &alpha, "mac", b"msg", &tag, None)
            .await
            .unwrap()
    );
    assert!(
        !kms.verify_mac(&a, &alpha, "mac", b"msG", &tag, None)
            .await
            .unwrap()
    );
    assert!(kms.sign(&a, &alpha, "mac", b"m").await.is_err());
}

#[tokio::test]
async fn rights_metadata_use_and_administration_are_separate() {
    let (kms, _) = kms();
    let alpha = project("alpha");
    kms.create_key(&admin("alpha"), &alpha, "k", Algorithm::Aes256Gcm, None)
        .await
        .unwrap();
    let reader = who("alpha", PrincipalKind::Account, Rights::READ);
    let user = who("alpha", PrincipalKind::SecretKey, Rights::READ_WRITE);
    let end_user = who("alpha", PrincipalKind::EndUser, Rights::NONE);
    let denied = ErrorCode::PermissionDenied;
    assert!(kms.key(&reader, &alpha, "k").await.is_ok());
    assert_eq!(
        kms.encrypt(&reader, &alpha, "k", b"x", b"")
            .await
            .unwrap_err()
            .code(),
        denied
    );
    let sealed = kms.encrypt(&user, &alpha, "k", b"x", b"").await.unwrap();
    assert_eq!(
        kms.rotate(&user, &alpha, "k").await.unwrap_err().code(),
        denied
    );
    assert_eq!(
        kms.create_key(&user, &alpha, "k2", Algorithm::Aes256Gcm, None)
            .await
            .unwrap_err()
            .code(),
        denied
    );
    assert_eq!(
        kms.decrypt(&end_user, &alpha, &sealed.ciphertext, b"")
            .await
            .unwrap_err()
            .code(),
        denied
    );
    assert_eq!(
        kms.keys(&end_user, &alpha).await.unwrap_err().code(),
        denied
    );
}

#[tokio::test]
async fn secrets_are_versioned_and_never_listed_with_values() {
    let (kms, _) = kms();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    assert_eq!(
        kms.put_secret(&a, &alpha, "db-password", b"one")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        kms.put_secret(&a, &alpha, "db-password", b"two")
            .await
            .unwrap(),
        2
    );
    let (value, version) = kms.secret(&a, &alpha, "db-password", None).await.unwrap();
    assert_eq!((&value[..], version), (&b"two"[..], 2));
    assert_eq!(
        &kms.secret(&a, &alpha, "db-password", Some(1))
            .await
            .unwrap()
            .0[..],
        b"one"
    );
    let list = kms.secrets(&a, &alpha).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].latest_version, 2);
    assert!(!format!("{list:?}").contains("two"));
    assert!(kms.put_secret(&a, &alpha, "bad name!", b"x").await.is_err());
    let reader = who("alpha", PrincipalKind::Account, Rights::READ);
    assert!(
        kms.secret(&reader, &alpha, "db-password", None)
            .await
            .is_err(),
        "reading a value is using it"
    );
    assert!(kms.delete_secret(&a, &alpha, "db-password").await.unwrap());
    assert_eq!(
        kms.secret(&a, &alpha, "db-password", None)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn every_operation_is_audited_and_the_chain_verifies() {
    let (kms, _) = kms();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    kms.create_key(&a, &alpha, "k", Algorithm::Aes256Gcm, None)
        .await
        .unwrap();
    kms.encrypt(&a, &alpha, "k", b"secret plaintext", b"")
        .await
        .unwrap();
    let reader = who("alpha", PrincipalKind::Account, Rights::READ);
    let _ = kms.encrypt(&reader, &alpha, "k", b"x", b"").await;
    let _ = kms.encrypt(&a, &alpha, "missing", b"x", b"").await;
    let records = kms
        .audit(
            &a,
            &alpha,
            &AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap()
        .records;
    let summary: Vec<(String, String)> = records
        .iter()
        .map(|r| (r.entry.operation.clone(), r.entry.result.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("create_key", "ok"),
            ("encrypt", "ok"),
            ("encrypt", "permission_denied"),
            ("encrypt", "not_found"),
        ]
        .map(|(o, r)| (o.to_string(), r.to_string()))
    );
    assert!(!format!("{records:?}").contains("secret plaintext"));
    let by_key = kms
        .audit(
            &a,
            &alpha,
            &AuditQuery {
                key: Some("missing".into()),
                limit: 10,
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(by_key.records.len(), 1);
    assert_eq!(by_key.next_after, None);
    assert_eq!(kms.verify_audit(&a, &alpha).await.unwrap(), Ok(4));
}

#[tokio::test]
async fn another_master_key_cannot_use_stored_keys() {
    let (kms, store) = kms();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    kms.create_key(&a, &alpha, "k", Algorithm::Aes256Gcm, None)
        .await
        .unwrap();
    let sealed = kms.encrypt(&a, &alpha, "k", b"x", b"").await.unwrap();
    let other = kms_on(store, &"cd".repeat(32));
    let err = other
        .decrypt(&a, &alpha, &sealed.ciphertext, b"")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert!(err.to_string().contains("wrong master key"), "{err}");
}

#[tokio::test]
async fn oversized_input_is_refused() {
    let (kms, _) = kms();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    kms.create_key(&a, &alpha, "k", Algorithm::Aes256Gcm, None)
        .await
        .unwrap();
    let big = vec![0u8; 64 * 1024 + 1];
    assert_eq!(
        kms.encrypt(&a, &alpha, "k", &big, b"")
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PayloadTooLarge
    );
    assert_eq!(
        kms.encrypt(&a, &alpha, "k", b"x", &vec![0u8; 4097])
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PayloadTooLarge
    );
    assert_eq!(
        kms.create_key(&a, &alpha, "no/slash", Algorithm::Aes256Gcm, None)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        kms.create_key(&a, &alpha, "k", Algorithm::Aes256Gcm, None)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::AlreadyExists
    );
}

#[tokio::test]
async fn rewrapping_under_a_new_master_key_keeps_everything_and_resumes() {
    let (old_kms, store) = kms();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    old_kms
        .create_key(&a, &alpha, "k", Algorithm::Aes256Gcm, None)
        .await
        .unwrap();
    old_kms.rotate(&a, &alpha, "k").await.unwrap();
    old_kms
        .create_key(&a, &alpha, "s", Algorithm::Ed25519, None)
        .await
        .unwrap();
    let sealed = old_kms
        .encrypt(&a, &alpha, "k", b"data", b"")
        .await
        .unwrap();
    old_kms
        .put_secret(&a, &alpha, "pw", b"hunter2")
        .await
        .unwrap();

    let old = MasterKey::parse(&"ab".repeat(32)).unwrap();
    let new = MasterKey::parse(&"cd".repeat(32)).unwrap();
    let done = super::rewrap::rewrap(&*store, &old, &new).await.unwrap();
    assert_eq!(
        (done.key_versions, done.secret_versions, done.already_done),
        (3, 1, 0)
    );

    let new_kms = kms_on(store.clone(), &"cd".repeat(32));
    assert_eq!(
        &new_kms
            .decrypt(&a, &alpha, &sealed.ciphertext, b"")
            .await
            .unwrap()
            .0[..],
        b"data"
    );
    assert_eq!(
        &new_kms.secret(&a, &alpha, "pw", None).await.unwrap().0[..],
        b"hunter2"
    );
    assert!(new_kms.sign(&a, &alpha, "s", b"m").await.is_ok());
    assert!(
        old_kms
            .decrypt(&a, &alpha, &sealed.ciphertext, b"")
            .await
            .is_err(),
        "the old key no longer works"
    );

    // A second run (say, after an interruption) finds everything done.
    let again = super::rewrap::rewrap(&*store, &old, &new).await.unwrap();
    assert_eq!(
        (
            again.key_versions,
            again.secret_versions,
            again.already_done
        ),
        (0, 0, 4)
    );
    // A third master key that never wrapped anything is refused clearly.
    let stranger = MasterKey::parse(&"ef".repeat(32)).unwrap();
    let other = MasterKey::parse(&"01".repeat(32)).unwrap();
    let err = super::rewrap::rewrap(&*store, &stranger, &other)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("wrapped under master key"),
        "{err}"
    );
}

#[tokio::test]
async fn the_master_key_is_checked_against_the_store() {
    let (kms, store) = kms();
    kms.check_master().await.unwrap();
    kms.check_master().await.unwrap();
    let err = kms_on(store, &"cd".repeat(32))
        .check_master()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("re-wrap"), "{err}");
}

#[tokio::test]
async fn a_cancelled_deletion_is_not_carried_out_and_other_projects_logs_stay_clean() {
    let (kms, store) = kms();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    kms.create_key(&a, &alpha, "k", Algorithm::Aes256Gcm, None)
        .await
        .unwrap();
    kms.schedule_deletion(&a, &alpha, "k", Some(7))
        .await
        .unwrap();
    let later = now_millis() + 8 * 24 * 3600 * 1000;
    // The scheduler saw the key due; a cancel lands before it deletes.
    let seen = store.keys_due(later).await.unwrap();
    assert_eq!(seen.len(), 1);
    kms.cancel_deletion(&a, &alpha, "k").await.unwrap();
    assert!(
        !store
            .delete_key(&alpha, "k", seen[0].revision)
            .await
            .unwrap()
    );
    assert_eq!(kms.run_due(later).await.unwrap(), (0, 0));
    assert!(kms.key(&a, &alpha, "k").await.is_ok());

    // A credential of another project is refused without writing to
    // alpha's log.
    let before = kms.verify_audit(&a, &alpha).await.unwrap().unwrap();
    let stranger = admin("beta");
    assert!(
        kms.encrypt(&stranger, &alpha, "k", b"x", b"")
            .await
            .is_err()
    );
    assert_eq!(kms.verify_audit(&a, &alpha).await.unwrap().unwrap(), before);
}

#[tokio::test]
async fn end_users_use_only_keys_that_allow_them() {
    let (kms, _) = kms();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    kms.create_key(&a, &alpha, "k", Algorithm::Aes256Gcm, None)
        .await
        .unwrap();
    let user = who("alpha", PrincipalKind::EndUser, Rights::NONE);
    let other_user = who("beta", PrincipalKind::EndUser, Rights::NONE);
    let err = kms
        .encrypt(&user, &alpha, "k", b"x", b"")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PermissionDenied, "{err}");
    assert_eq!(
        kms.set_end_user_access(&user, &alpha, "k", true)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PermissionDenied,
        "only admins grant"
    );
    assert!(
        kms.set_end_user_access(&a, &alpha, "k", true)
            .await
            .unwrap()
            .end_users
    );
    let sealed = kms.encrypt(&user, &alpha, "k", b"x", b"").await.unwrap();
    assert_eq!(
        &kms.decrypt(&user, &alpha, &sealed.ciphertext, b"")
            .await
            .unwrap()
            .0[..],
        b"x"
    );
    // Still nothing beyond using it, and nothing in another project.
    assert!(kms.rotate(&user, &alpha, "k").await.is_err());
    assert!(kms.key(&user, &alpha, "k").await.is_err());
    assert!(
        kms.encrypt(&other_user, &alpha, "k", b"x", b"")
            .await
            .is_err()
    );
    kms.set_end_user_access(&a, &alpha, "k", false)
        .await
        .unwrap();
    assert!(kms.encrypt(&user, &alpha, "k", b"x", b"").await.is_err());
}

#[tokio::test]
async fn keys_closed_to_end_users_reveal_nothing_to_them() {
    let (kms, _) = kms();
    let (a, alpha) = (admin("alpha"), project("alpha"));
    kms.create_key(&a, &alpha, "retired", Algorithm::Aes256Gcm, None)
        .await
        .unwrap();
    kms.set_enabled(&a, &alpha, "retired", false).await.unwrap();
    let user = who("alpha", PrincipalKind::EndUser, Rights::NONE);
    // A missing key and a disabled one answer as a closed one does.
    for name in ["missing", "retired"] {
        let err = kms
            .encrypt(&user, &alpha, name, b"x", b"")
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied, "{name}: {err}");
    }
    // The project's own callers still get the plain answers.
    let err = kms
        .encrypt(&a, &alpha, "missing", b"x", b"")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    let err = kms
        .encrypt(&a, &alpha, "retired", b"x", b"")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
    // Once open to end users, a disabled key says so.
    kms.set_end_user_access(&a, &alpha, "retired", true)
        .await
        .unwrap();
    let err = kms
        .encrypt(&user, &alpha, "retired", b"x", b"")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
}

#[tokio::test]
async fn refused_calls_cannot_grow_the_audit_log_without_bound() {
    let store = Arc::new(MemoryKms::new());
    let kms = Kms::new(
        store,
        Arc::new(MasterKey::parse(&"ab".repeat(32)).unwrap()),
        KmsLimits {
            refused_audit: crate::auth::ratelimit::Rate {
                burst: 5,
                per_minute: 60,
            },
            ..KmsLimits::default()
        },
        Arc::new(super::KmsMetrics::unregistered()),
    );
    let (a, alpha) = (admin("alpha"), project("alpha"));
    let reader = who("alpha", PrincipalKind::Account, Rights::READ);
    let all = |kms: Kms| async move {
        let page = kms
            .audit(
                &admin("alpha"),
                &project("alpha"),
                &AuditQuery {
                    limit: 1000,
                    ..AuditQuery::default()
                },
            )
            .await
            .unwrap();
        page.records
            .iter()
            .map(|r| (r.entry.operation.clone(), r.entry.result.clone()))
            .collect::<Vec<_>>()
    };
    // A name that is no key name: refused, and nothing recorded.
    for bad in ["../x", "a b", &"n".repeat(200)] {
        let err = kms.encrypt(&a, &alpha, bad, b"x", b"").await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput);
    }
    assert!(all(kms.clone()).await.is_empty());
    // 50 refusals from one credential: 5 recorded, the rest counted.
    for _ in 0..50 {
        let _ = kms.encrypt(&reader, &alpha, "k", b"x", b"").await;
    }
    let records = all(kms.clone()).await;
    assert_eq!(records.len(), 5, "{records:?}");
    // Another credential of the project still records its own, and
    // successful calls are always recorded.
    let _ = kms.encrypt(&a, &alpha, "missing", b"x", b"").await;
    kms.create_key(&a, &alpha, "k", Algorithm::Aes256Gcm, None)
        .await
        .unwrap();
    assert_eq!(all(kms.clone()).await.len(), 7);
    // Once the budget refills, one entry says how many went unrecorded.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let _ = kms.encrypt(&reader, &alpha, "k", b"x", b"").await;
    let records = all(kms.clone()).await;
    assert_eq!(
        records[records.len() - 2..],
        [
            (
                "suppressed".to_string(),
                "45 refused calls not recorded".to_string()
            ),
            ("encrypt".to_string(), "permission_denied".to_string()),
        ]
    );
    assert!(kms.verify_audit(&a, &alpha).await.unwrap().is_ok());
}
