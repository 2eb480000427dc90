//! bunbase-client against real servers: typed calls, error codes, and the
//! subscription stream that reconnects and resumes by itself.

use bunbase_client::{Client, StreamItem};
use bunbase_core::ErrorCode;
use bunbase_core::ProjectId;
use bunbase_core::auth::{Principal, PrincipalKind, Rights};
use bunbase_core::events::adapters::BusConfig;
use bunbase_core::events::hub::HubConfig;
use bunbase_tests::harness::{self, ALPHA, BETA, Bus, Options};
use futures_util::StreamExt;
use serde_json::json;

use crate::support::{WAIT, unique};

async fn next_seq(stream: &mut bunbase_client::EventStream) -> u64 {
    match tokio::time::timeout(WAIT, stream.next()).await {
        Ok(Some(Ok(StreamItem::Event(event)))) => event.seq,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test]
async fn publish_list_and_subscribe() {
    let server = harness::shared();
    let client = Client::new(&server.url).unwrap().with_token(ALPHA);
    let events = client.events();
    let topic = unique("client");
    let first = events
        .publish("alpha", &format!("{topic}.a"), &json!({"n": 1}))
        .await
        .unwrap();
    let mut stream = events
        .subscribe_after("alpha", &format!("{topic}.*"), Some(first - 1))
        .await
        .unwrap();
    assert_eq!(next_seq(&mut stream).await, first);
    let second = events
        .publish("alpha", &format!("{topic}.b"), "text")
        .await
        .unwrap();
    match tokio::time::timeout(WAIT, stream.next()).await {
        Ok(Some(Ok(StreamItem::Event(event)))) => {
            assert_eq!(event.seq, second);
            assert_eq!(event.topic.as_str(), format!("{topic}.b"));
            assert_eq!(event.data.to_value(), json!("text"));
        }
        other => panic!("{other:?}"),
    }
    let topics = events.topics("alpha").await.unwrap();
    let info = topics
        .iter()
        .find(|t| t.topic.as_str() == format!("{topic}.a"))
        .unwrap();
    assert_eq!(info.last_seq, first);
}

#[tokio::test]
async fn errors_keep_their_codes() {
    let server = harness::shared();
    let events = Client::new(&server.url).unwrap().with_token(ALPHA).events();
    let code = |r: Result<u64, bunbase_core::Error>| r.unwrap_err().code();
    assert_eq!(
        code(events.publish("beta", "t", &1).await),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        code(events.publish("alpha", "a..b", &1).await),
        ErrorCode::InvalidInput
    );
    let anonymous = Client::new(&server.url).unwrap().events();
    assert_eq!(
        code(anonymous.publish("alpha", "t", &1).await),
        ErrorCode::Unauthenticated
    );
    let nowhere = Client::new("http://127.0.0.1:9").unwrap().events();
    assert_eq!(
        code(nowhere.publish("alpha", "t", &1).await),
        ErrorCode::Unavailable
    );
    assert!(Client::new("ftp://x").is_err());

    // A subscription that can never succeed fails at once.
    let denied = events.subscribe("beta", "t").await.err().unwrap();
    assert_eq!(denied.code(), ErrorCode::PermissionDenied);
    let invalid = events.subscribe("alpha", "a..b").await.err().unwrap();
    assert_eq!(invalid.code(), ErrorCode::InvalidInput);

    // Once subscribe returns, the next publish is delivered.
    let topic = unique("eager");
    let mut live = events.subscribe("alpha", &topic).await.unwrap();
    let seq = events.publish("alpha", &topic, &"now").await.unwrap();
    assert_eq!(next_seq(&mut live).await, seq);
}

#[tokio::test]
async fn stream_resumes_after_being_dropped_for_lagging() {
    let server = harness::start(Options {
        bus_config: BusConfig {
            retain_per_topic: 100_000,
            hub: HubConfig {
                queue_capacity: 4,
                ..HubConfig::default()
            },
            ..BusConfig::default()
        },
        ..Options::default()
    })
    .await;
    let events = Client::new(server.url())
        .unwrap()
        .with_token(ALPHA)
        .events();
    let mut stream = events
        .subscribe_after("alpha", "burst", Some(0))
        .await
        .unwrap();
    let project = ProjectId::new("alpha").unwrap();
    let principal = Principal {
        subject: "test".into(),
        kind: PrincipalKind::Service,
        project: project.clone(),
        rights: Rights::ALL,
    };
    // Publish far more than the socket buffers and queue hold while the
    // stream is not read, so the server drops it as lagging.
    let first = server
        .events
        .publish(&principal, &project, "burst", "0")
        .await
        .unwrap();
    assert_eq!(next_seq(&mut stream).await, first);
    let payload = format!("\"{}\"", "y".repeat(2000));
    let total = 12_000u64;
    for _ in 1..total {
        server
            .events
            .publish(&principal, &project, "burst", &payload)
            .await
            .unwrap();
    }
    for expected in first + 1..first + total {
        assert_eq!(
            next_seq(&mut stream).await,
            expected,
            "every event once, in order"
        );
    }
    let metrics = bunbase_core::metrics::render(&server.registry);
    assert!(
        metrics.contains(r#"buncast_subscribers_dropped_total{reason="lagged"}"#),
        "the stream really was dropped and resumed: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_survives_a_server_restart() {
    let redis = bunbase_tests::servers::redis_url().to_string();
    let options = Options {
        bus: Bus::Redis(redis, unique("bbrestart")),
        ..Options::default()
    };
    let first = harness::start(options.clone()).await;
    let addr = first.addr;
    let other = harness::start(options.clone()).await;
    let events = Client::new(first.url()).unwrap().with_token(BETA).events();
    let on_other = Client::new(other.url()).unwrap().with_token(BETA).events();
    let mut stream = events.subscribe("beta", "orders").await.unwrap();
    let last = on_other.publish("beta", "orders", &0).await.unwrap();
    assert_eq!(next_seq(&mut stream).await, last);

    first.shutdown.trigger();
    let _ = first.handle.await;
    let missed_1 = on_other.publish("beta", "orders", &1).await.unwrap();
    let missed_2 = on_other.publish("beta", "orders", &2).await.unwrap();
    assert!(missed_1 > last);
    // The server comes back on the same address; the stream resumes there.
    let _again = harness::start(Options {
        listen: Some(addr),
        ..options
    })
    .await;
    assert_eq!(next_seq(&mut stream).await, missed_1);
    assert_eq!(next_seq(&mut stream).await, missed_2);
}

#[tokio::test]
async fn platform_calls_are_typed() {
    use bunbase_core::auth::ratelimit::Rate;
    use bunbase_core::platform::Role;
    let server = harness::start_platform(Rate {
        burst: 1000,
        per_minute: 100_000,
    })
    .await;
    let anonymous = Client::new(&server.url).unwrap().platform();
    let owner_email = format!("{}@example.com", unique("owner"));
    let tokens = anonymous
        .sign_up(&owner_email, "correct horse battery")
        .await
        .unwrap();
    let owner = Client::new(&server.url)
        .unwrap()
        .with_token(&tokens.access_token)
        .platform();
    assert_eq!(owner.me().await.unwrap()["email"], owner_email.as_str());
    let project = owner.create_project("Client Test").await.unwrap();
    assert_eq!(project.role, Role::Owner);
    assert_eq!(owner.projects().await.unwrap().len(), 1);
    assert_eq!(
        owner
            .rename_project(&project.id, "Renamed")
            .await
            .unwrap()
            .name,
        "Renamed"
    );

    let dev_email = format!("{}@example.com", unique("dev"));
    anonymous
        .sign_up(&dev_email, "correct horse battery")
        .await
        .unwrap();
    let member = owner
        .put_member(&project.id, &dev_email, Role::Developer)
        .await
        .unwrap();
    assert_eq!(owner.members(&project.id).await.unwrap().len(), 2);
    owner
        .remove_member(&project.id, &member.account_id)
        .await
        .unwrap();

    let secret = owner
        .create_key(&project.id, "server", "secret")
        .await
        .unwrap();
    assert!(secret.secret.starts_with("bb_sk_"));
    let publishable = owner
        .create_key(&project.id, "web", "publishable")
        .await
        .unwrap();
    assert_eq!(owner.keys(&project.id).await.unwrap().len(), 2);

    // A server publishes with the secret key through the same client type.
    let events = Client::new(&server.url)
        .unwrap()
        .with_token(&secret.secret)
        .events();
    events
        .publish(&project.id, "orders", &json!({"n": 1}))
        .await
        .unwrap();

    let app = anonymous.end_users(&project.id, &publishable.secret);
    let user = app
        .sign_up("user@example.com", "user password 1")
        .await
        .unwrap();
    assert_eq!(
        app.me(&user.access_token).await.unwrap()["kind"],
        "end_user"
    );
    let again = app.refresh(&user.refresh_token).await.unwrap();
    assert_eq!(
        app.refresh(&user.refresh_token).await.unwrap_err().code(),
        ErrorCode::Unauthenticated,
        "spent refresh token"
    );
    let _ = again;
    let page = owner.users(&project.id, None, 10).await.unwrap();
    assert_eq!(page.users.len(), 1);
    assert!(page.next.is_none());
    owner.revoke_key(&project.id, &secret.key.id).await.unwrap();
    assert_eq!(
        events
            .publish(&project.id, "orders", &1)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Unauthenticated
    );
    assert_eq!(
        owner.jwks().await.unwrap()["keys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    owner.sign_out(true).await.unwrap();
    assert_eq!(
        owner.me().await.unwrap_err().code(),
        ErrorCode::Unauthenticated
    );
}
