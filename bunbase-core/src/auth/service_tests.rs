//! The identity service's flows on the memory store.

use std::sync::Arc;
use std::time::Duration;

use super::adapters::memory::MemoryStore;
use super::password::Passwords;
use super::ratelimit::Rate;
use super::service::{AccountSession, Audience, ClientInfo};
use super::{Access, AuthMetrics, Identity, IdentityConfig, PrincipalKind};
use crate::ErrorCode;
use crate::auth::model::KeyKind;
use crate::id::ProjectId;
use crate::platform::Role;

async fn identity_with(config: IdentityConfig) -> Identity {
    let store = Arc::new(MemoryStore::new());
    Identity::new(
        store.clone(),
        store,
        Passwords::with_params(64, 1, 1).unwrap(),
        config,
        Arc::new(AuthMetrics::unregistered()),
    )
    .await
    .unwrap()
}

async fn identity() -> Identity {
    identity_with(IdentityConfig {
        rate: Rate {
            burst: 1000,
            per_minute: 100_000,
        },
        ..IdentityConfig::default()
    })
    .await
}

const PW: &str = "correct horse battery";
const NOBODY: ClientInfo = ClientInfo { ip: None };

async fn account(id: &Identity, email: &str) -> (AccountSession, String) {
    let (_, tokens) = id
        .sign_up(Audience::Accounts, email, PW, NOBODY)
        .await
        .unwrap();
    (
        id.account(&tokens.access_token).await.unwrap(),
        tokens.access_token,
    )
}

#[tokio::test]
async fn sign_up_sign_in_refresh_and_reuse() {
    let id = identity().await;
    let (account_id, first) = id
        .sign_up(Audience::Accounts, "Dev@Example.com", PW, NOBODY)
        .await
        .unwrap();
    assert!(account_id.starts_with("acc_"));
    assert_eq!(first.token_type, "Bearer");
    assert_eq!(first.expires_in, 900);
    // The same address, differently written, is taken.
    let err = id
        .sign_up(Audience::Accounts, " dev@EXAMPLE.com ", PW, NOBODY)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AlreadyExists);

    let tokens = id
        .sign_in(Audience::Accounts, "DEV@example.com", PW, NOBODY)
        .await
        .unwrap();
    let me = id.me(&tokens.access_token, None).await.unwrap();
    assert_eq!(me["email"], "dev@example.com");

    let rotated = id.refresh(&tokens.refresh_token, None).await.unwrap();
    assert_ne!(rotated.refresh_token, tokens.refresh_token);
    assert!(id.access(&rotated.access_token).await.is_ok());
    // Re-using the spent token revokes the whole session.
    let err = id.refresh(&tokens.refresh_token, None).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unauthenticated);
    assert!(err.to_string().contains("revoked"));
    assert_eq!(
        id.refresh(&rotated.refresh_token, None)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Unauthenticated
    );
    assert_eq!(
        id.access(&rotated.access_token).await.unwrap_err().code(),
        ErrorCode::Unauthenticated
    );
    // The other session (from sign-up) is untouched.
    assert!(id.access(&first.access_token).await.is_ok());
}

#[tokio::test]
async fn wrong_passwords_and_unknown_emails_look_the_same() {
    let id = identity().await;
    account(&id, "a@example.com").await;
    let wrong = id
        .sign_in(
            Audience::Accounts,
            "a@example.com",
            "wrong password",
            NOBODY,
        )
        .await
        .unwrap_err();
    let unknown = id
        .sign_in(Audience::Accounts, "b@example.com", PW, NOBODY)
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), ErrorCode::Unauthenticated);
    assert_eq!(wrong.to_string(), unknown.to_string());
    for (email, password) in [("not-an-email", PW), ("a@example.com", "short")] {
        let err = id
            .sign_up(Audience::Accounts, email, password, NOBODY)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput);
    }
}

#[tokio::test]
async fn sign_out_and_sign_out_everywhere() {
    let id = identity().await;
    let (_, a) = account(&id, "a@example.com").await;
    let b = id
        .sign_in(Audience::Accounts, "a@example.com", PW, NOBODY)
        .await
        .unwrap();
    let c = id
        .sign_in(Audience::Accounts, "a@example.com", PW, NOBODY)
        .await
        .unwrap();
    id.sign_out(&a).await.unwrap();
    assert!(id.access(&a).await.is_err());
    assert!(id.access(&b.access_token).await.is_ok());
    assert_eq!(id.sign_out_everywhere(&b.access_token).await.unwrap(), 2);
    assert!(id.access(&b.access_token).await.is_err());
    assert!(id.access(&c.access_token).await.is_err());
    assert!(id.refresh(&c.refresh_token, None).await.is_err());
}

#[tokio::test]
async fn sign_in_is_rate_limited_and_failures_slow_down() {
    let id = identity_with(IdentityConfig {
        rate: Rate {
            burst: 3,
            per_minute: 1,
        },
        ..IdentityConfig::default()
    })
    .await;
    let client = ClientInfo {
        ip: Some("203.0.113.9".parse().unwrap()),
    };
    id.sign_up(Audience::Accounts, "a@example.com", PW, client)
        .await
        .unwrap();
    for _ in 0..2 {
        id.sign_in(Audience::Accounts, "a@example.com", PW, client)
            .await
            .unwrap();
    }
    let err = id
        .sign_in(Audience::Accounts, "a@example.com", PW, client)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited);
    assert!(matches!(
        err,
        crate::Error::RateLimited {
            retry_after: Some(_),
            ..
        }
    ));
}

#[tokio::test]
async fn projects_members_and_roles() {
    let id = identity().await;
    let (owner, _) = account(&id, "owner@example.com").await;
    let (dev, _) = account(&id, "dev@example.com").await;
    let (stranger, _) = account(&id, "stranger@example.com").await;
    let project = id.create_project(&owner, "My Shop").await.unwrap();
    assert!(project.id.as_str().starts_with("my-shop-"));
    assert_eq!(id.my_projects(&owner).await.unwrap()[0].1, Role::Owner);

    // Strangers are told the project does not exist.
    assert_eq!(
        id.project(&stranger, &project.id).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    assert_eq!(
        id.rename_project(&stranger, &project.id, "x")
            .await
            .unwrap_err()
            .code(),
        ErrorCode::NotFound
    );

    id.put_member(&owner, &project.id, "DEV@example.com", Role::Developer)
        .await
        .unwrap();
    assert_eq!(
        id.project(&dev, &project.id).await.unwrap().1,
        Role::Developer
    );
    // Developers may not manage; admins may not create owners.
    assert_eq!(
        id.put_member(&dev, &project.id, "stranger@example.com", Role::Viewer)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        id.create_key(&dev, &project.id, "k", KeyKind::Secret)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PermissionDenied
    );
    id.put_member(&owner, &project.id, "dev@example.com", Role::Admin)
        .await
        .unwrap();
    assert_eq!(
        id.put_member(&dev, &project.id, "stranger@example.com", Role::Owner)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        id.delete_project(&dev, &project.id)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PermissionDenied
    );
    // The last owner can't leave or be demoted.
    assert_eq!(
        id.remove_member(&owner, &project.id, &owner.account_id)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Conflict
    );
    assert_eq!(
        id.put_member(&owner, &project.id, "owner@example.com", Role::Admin)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Conflict
    );
    assert_eq!(
        id.put_member(&owner, &project.id, "nobody@example.com", Role::Viewer)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::NotFound
    );

    let renamed = id
        .rename_project(&dev, &project.id, " New name ")
        .await
        .unwrap();
    assert_eq!(renamed.name, "New name");
    id.delete_project(&owner, &project.id).await.unwrap();
    assert_eq!(
        id.project(&owner, &project.id).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn every_credential_resolves_to_its_own_project_only() {
    let id = identity().await;
    let (owner, owner_token) = account(&id, "owner@example.com").await;
    let (viewer, viewer_token) = account(&id, "viewer@example.com").await;
    let a = id.create_project(&owner, "A").await.unwrap().id;
    let b = id.create_project(&owner, "B").await.unwrap().id;
    id.put_member(&owner, &a, "viewer@example.com", Role::Viewer)
        .await
        .unwrap();
    let _ = viewer;

    // Accounts: rights from the role, per project.
    let p = id.resolve(&owner_token, &a).await.unwrap();
    assert_eq!((p.kind, p.rights.admin), (PrincipalKind::Account, true));
    let v = id.resolve(&viewer_token, &a).await.unwrap();
    assert!(v.rights.read && !v.rights.write);
    assert_eq!(
        id.resolve(&viewer_token, &b).await.unwrap_err().code(),
        ErrorCode::PermissionDenied
    );

    // Keys: bound to their project.
    let secret = id
        .create_key(&owner, &a, "server", KeyKind::Secret)
        .await
        .unwrap();
    assert!(secret.secret.starts_with("bb_sk_") && secret.secret.len() >= 6 + 43);
    let publishable = id
        .create_key(&owner, &a, "web", KeyKind::Publishable)
        .await
        .unwrap();
    let sk = id.resolve(&secret.secret, &b).await.unwrap();
    assert_eq!(
        sk.project, a,
        "a key of A resolves to A even when B is asked"
    );
    assert!(sk.authorize(&b, Access::Read).is_err());
    assert!(sk.authorize(&a, Access::Write).is_ok());
    let pk = id.resolve(&publishable.secret, &a).await.unwrap();
    assert_eq!(pk.kind, PrincipalKind::PublishableKey);
    assert!(
        pk.authorize(&a, Access::Read).is_err(),
        "publishable keys grant nothing by themselves"
    );
    let listed = id.keys(&owner, &a).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|k| k.hint.ends_with('…')));
    assert!(
        listed.iter().any(|k| k.last_used_at.is_some()),
        "last used is recorded"
    );
    id.revoke_key(&owner, &a, &secret.key.id).await.unwrap();
    assert_eq!(
        id.resolve(&secret.secret, &a).await.unwrap_err().code(),
        ErrorCode::Unauthenticated
    );
    assert_eq!(
        id.revoke_key(&owner, &b, &publishable.key.id)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::NotFound
    );

    // End users: per project, same email twice is two users.
    let (u1, t1) = id
        .sign_up(Audience::Users(&a), "user@example.com", PW, NOBODY)
        .await
        .unwrap();
    let (u2, _) = id
        .sign_up(Audience::Users(&b), "user@example.com", PW, NOBODY)
        .await
        .unwrap();
    assert_ne!(u1, u2);
    let eu = id.resolve(&t1.access_token, &b).await.unwrap();
    assert_eq!(
        (eu.kind, eu.project.clone()),
        (PrincipalKind::EndUser, a.clone())
    );
    assert!(eu.authorize(&b, Access::Read).is_err());
    assert_eq!(
        id.me(&t1.access_token, Some(&b)).await.unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        id.refresh(&t1.refresh_token, Some(&b))
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Unauthenticated
    );
    assert!(
        id.refresh(&t1.refresh_token, Some(&a)).await.is_ok(),
        "a refused scope changed nothing"
    );
    assert_eq!(
        id.account(&t1.access_token).await.unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
    let unknown_project = ProjectId::new("nope").unwrap();
    assert_eq!(
        id.sign_up(
            Audience::Users(&unknown_project),
            "x@example.com",
            PW,
            NOBODY
        )
        .await
        .unwrap_err()
        .code(),
        ErrorCode::NotFound
    );

    // Admin listing and deleting of users.
    let owner_principal = id.resolve(&owner_token, &a).await.unwrap();
    assert_eq!(
        id.users(&owner_principal, &a, None, 10)
            .await
            .unwrap()
            .users
            .len(),
        1
    );
    assert_eq!(
        id.users(&v, &a, None, 10).await.unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        id.users(&owner_principal, &b, None, 10)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PermissionDenied
    );
    id.delete_user(&owner_principal, &a, &u1).await.unwrap();
    assert_eq!(
        id.resolve(&t1.access_token, &a).await.unwrap_err().code(),
        ErrorCode::Unauthenticated
    );

    // Deleting a project ends its keys and users.
    id.delete_project(&owner, &a).await.unwrap();
    assert_eq!(
        id.resolve(&publishable.secret, &a)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Unauthenticated
    );
    assert_eq!(
        id.resolve(&owner_token, &a).await.unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
}

#[tokio::test]
async fn signing_keys_rotate_without_breaking_tokens() {
    let id = identity_with(IdentityConfig {
        access_ttl: Duration::from_secs(60),
        ..IdentityConfig::default()
    })
    .await;
    let (_, token) = account(&id, "a@example.com").await;
    let old_kid = super::jwt::KeyRing::kid_of(&token).unwrap();
    let new_kid = id.rotate_signing_key().await.unwrap();
    assert_ne!(old_kid, new_kid);
    assert!(id.access(&token).await.is_ok(), "old tokens keep verifying");
    let jwks = id.jwks();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let fresh = id
        .sign_in(Audience::Accounts, "a@example.com", PW, NOBODY)
        .await
        .unwrap();
    assert_eq!(
        super::jwt::KeyRing::kid_of(&fresh.access_token).unwrap(),
        new_kid
    );
}

#[tokio::test]
async fn closed_sign_up_admits_only_the_first_account() {
    let id = identity_with(IdentityConfig {
        accounts: super::AccountPolicy {
            sign_up: super::SignUp::Closed,
            max_projects: 10,
        },
        ..IdentityConfig::default()
    })
    .await;
    let (admin, admin_token) = account(&id, "admin@example.com").await;
    assert!(id.is_instance_admin(&admin.account_id).await.unwrap());
    let me = id.me(&admin_token, None).await.unwrap();
    assert_eq!(me["instance_admin"], true);
    let err = id
        .sign_up(Audience::Accounts, "second@example.com", PW, NOBODY)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PermissionDenied);
    assert!(err.to_string().contains("sign-up is closed"), "{err}");
    // Nothing was made: the address is still free, and cannot sign in.
    assert!(
        id.sign_in(Audience::Accounts, "second@example.com", PW, NOBODY)
            .await
            .is_err()
    );
    // The administrator makes accounts; nobody else does.
    let id_of_bob = id
        .create_account(&admin, "bob@example.com", PW)
        .await
        .unwrap();
    let bob = id
        .sign_in(Audience::Accounts, "bob@example.com", PW, NOBODY)
        .await
        .unwrap();
    let bob = id.account(&bob.access_token).await.unwrap();
    assert_eq!(bob.account_id, id_of_bob);
    assert_eq!(
        id.create_account(&bob, "eve@example.com", PW)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        id.create_account(&admin, "bob@example.com", PW)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::AlreadyExists
    );
    assert_eq!(
        id.create_account(&admin, "carol@example.com", "short")
            .await
            .unwrap_err()
            .code(),
        ErrorCode::InvalidInput
    );
    // End users of a project still sign up: that is the app's business.
    let project = id.create_project(&admin, "App").await.unwrap().id;
    assert!(
        id.sign_up(Audience::Users(&project), "user@example.com", PW, NOBODY)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_account_owns_at_most_max_projects_and_the_admin_any() {
    let id = identity_with(IdentityConfig {
        accounts: super::AccountPolicy {
            sign_up: super::SignUp::Open,
            max_projects: 2,
        },
        ..IdentityConfig::default()
    })
    .await;
    let (admin, _) = account(&id, "admin@example.com").await;
    let (dev, dev_token) = account(&id, "dev@example.com").await;
    let me = id.me(&dev_token, None).await.unwrap();
    assert_eq!(me["instance_admin"], false);
    let first = id.create_project(&dev, "One").await.unwrap().id;
    id.create_project(&dev, "Two").await.unwrap();
    let err = id.create_project(&dev, "Three").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::QuotaExceeded);
    assert!(err.to_string().contains("at most 2 projects"), "{err}");
    assert_eq!(id.my_projects(&dev).await.unwrap().len(), 2);
    // Membership in others' projects does not count; only ownership.
    let shared = id.create_project(&admin, "Shared").await.unwrap().id;
    id.put_member(&admin, &shared, "dev@example.com", Role::Developer)
        .await
        .unwrap();
    assert_eq!(id.my_projects(&dev).await.unwrap().len(), 3);
    // Deleting one makes room again.
    id.delete_project(&dev, &first).await.unwrap();
    id.create_project(&dev, "Three").await.unwrap();
    // The instance's administrator has no limit.
    for n in 0..4 {
        id.create_project(&admin, &format!("Admin {n}"))
            .await
            .unwrap();
    }
}
