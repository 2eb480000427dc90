//! The conformance suite every [`EventBus`] adapter must pass.
//!
//! Call [`run`] with a factory that builds a fresh bus for a [`BusConfig`];
//! each check uses its own random project ids, so a shared server is fine.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::adapters::BusConfig;
use super::hub::HubConfig;
use super::model::{CloseReason, Delivery, GapReason, Payload, Topic, TopicFilter};
use super::{EventBus, Subscription};
use crate::error::ErrorCode;
use crate::id::{ProjectId, random_hex};

pub type BusFuture = Pin<Box<dyn Future<Output = Arc<dyn EventBus>> + Send>>;

/// Builds a fresh bus with the given config.
pub trait BusFactory: Send + Sync {
    fn make(&self, config: BusConfig) -> BusFuture;
}

impl<F> BusFactory for F
where
    F: Fn(BusConfig) -> BusFuture + Send + Sync,
{
    fn make(&self, config: BusConfig) -> BusFuture {
        self(config)
    }
}

const WAIT: Duration = Duration::from_secs(5);

/// Runs every check; panics naming the first that fails.
pub async fn run(factory: &dyn BusFactory) {
    macro_rules! check {
        ($name:ident) => {
            eprintln!("events conformance: {}", stringify!($name));
            $name(factory).await;
        };
    }
    check!(sequence_numbers_increase_across_topics);
    check!(subscribers_receive_in_order);
    check!(patterns_match_segments);
    check!(projects_are_isolated);
    check!(resume_replays_then_goes_live);
    check!(live_subscriptions_start_at_the_head);
    check!(resume_with_pattern_merges_topics);
    check!(evicted_history_is_reported_as_gap);
    check!(unknown_resume_point_is_reported);
    check!(slow_subscriber_is_closed_not_skipped);
    check!(concurrent_publishers_keep_one_order);
    check!(topics_list_counts_subscribers);
    check!(topic_limit_is_enforced);
    check!(subscriptions_per_project_are_bounded);
    check!(deleting_a_project_forgets_its_events);
    check!(retained_bytes_are_bounded_per_project);
    check!(shutdown_closes_subscribers);
}

fn project() -> ProjectId {
    ProjectId::new(format!("p{}", random_hex(6))).unwrap_or_else(|e| panic!("{e}"))
}

fn topic(name: &str) -> Topic {
    Topic::new(name).unwrap_or_else(|e| panic!("{e}"))
}

fn filter(raw: &str) -> TopicFilter {
    TopicFilter::parse(raw).unwrap_or_else(|e| panic!("{e}"))
}

fn json(n: u64) -> Payload {
    Payload::from_value(&serde_json::json!({ "n": n }))
}

async fn next(sub: &mut Subscription) -> Delivery {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(d)) => d,
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("no delivery within {WAIT:?}"),
    }
}

/// Next item, which must be an event; returns (seq, topic, n).
async fn next_event(sub: &mut Subscription) -> (u64, String, u64) {
    match next(sub).await {
        Delivery::Event(e) => (
            e.seq,
            e.topic.to_string(),
            e.data.to_value()["n"].as_u64().unwrap_or(u64::MAX),
        ),
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn assert_quiet(sub: &mut Subscription) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(150), sub.next()).await {
        panic!("expected nothing, got {item:?}");
    }
}

async fn publish(bus: &dyn EventBus, p: &ProjectId, t: &str, n: u64) -> u64 {
    bus.publish(p, &topic(t), json(n))
        .await
        .unwrap_or_else(|e| panic!("publish failed: {e}"))
}

async fn sequence_numbers_increase_across_topics(f: &dyn BusFactory) {
    let bus = f.make(BusConfig::default()).await;
    let p = project();
    let a = publish(&*bus, &p, "a", 1).await;
    let b = publish(&*bus, &p, "b", 2).await;
    let c = publish(&*bus, &p, "a", 3).await;
    assert!(a >= 1 && a < b && b < c, "seqs {a} {b} {c} must increase");
    // Another project has its own sequence: p's publishes don't move it.
    let q = project();
    let q1 = publish(&*bus, &q, "a", 1).await;
    for n in 0..5 {
        publish(&*bus, &p, "a", n).await;
    }
    let q2 = publish(&*bus, &q, "a", 2).await;
    assert_eq!(q2, q1 + 1, "q's sequence is its own");
}

async fn subscribers_receive_in_order(f: &dyn BusFactory) {
    let bus = f.make(BusConfig::default()).await;
    let p = project();
    let mut one = bus.subscribe(&p, &filter("orders"), None).await.unwrap();
    let mut two = bus.subscribe(&p, &filter("orders"), None).await.unwrap();
    let mut seqs = Vec::new();
    for n in 0..50 {
        seqs.push(publish(&*bus, &p, "orders", n).await);
    }
    for sub in [&mut one, &mut two] {
        for (n, seq) in seqs.iter().enumerate() {
            assert_eq!(next_event(sub).await, (*seq, "orders".into(), n as u64));
        }
        assert_quiet(sub).await;
    }
}

async fn patterns_match_segments(f: &dyn BusFactory) {
    let bus = f.make(BusConfig::default()).await;
    let p = project();
    let mut star = bus.subscribe(&p, &filter("orders.*"), None).await.unwrap();
    let mut rest = bus.subscribe(&p, &filter("orders.>"), None).await.unwrap();
    publish(&*bus, &p, "orders", 0).await;
    let s1 = publish(&*bus, &p, "orders.created", 1).await;
    let s2 = publish(&*bus, &p, "orders.eu.created", 2).await;
    publish(&*bus, &p, "invoices.created", 3).await;
    let s4 = publish(&*bus, &p, "orders.paid", 4).await;
    assert_eq!(next_event(&mut star).await.0, s1);
    assert_eq!(next_event(&mut star).await.0, s4);
    assert_quiet(&mut star).await;
    assert_eq!(next_event(&mut rest).await.0, s1);
    assert_eq!(next_event(&mut rest).await.0, s2);
    assert_eq!(next_event(&mut rest).await.0, s4);
    assert_quiet(&mut rest).await;
}

async fn projects_are_isolated(f: &dyn BusFactory) {
    let bus = f.make(BusConfig::default()).await;
    let (a, b) = (project(), project());
    let mut b_sub = bus.subscribe(&b, &filter(">"), Some(0)).await.unwrap();
    publish(&*bus, &a, "shared", 1).await;
    let a_last = publish(&*bus, &a, "shared", 2).await;
    assert_quiet(&mut b_sub).await;
    let mut b_late = bus.subscribe(&b, &filter("shared"), Some(0)).await.unwrap();
    assert_quiet(&mut b_late).await;
    assert!(
        bus.topics(&b).await.unwrap().is_empty() || {
            let t = bus.topics(&b).await.unwrap();
            t.iter().all(|i| i.last_seq == 0)
        }
    );
    let a_topics = bus.topics(&a).await.unwrap();
    assert_eq!(a_topics.len(), 1);
    assert_eq!(a_topics[0].last_seq, a_last);
}

async fn resume_replays_then_goes_live(f: &dyn BusFactory) {
    let bus = f.make(BusConfig::default()).await;
    let p = project();
    let mut seqs = Vec::new();
    for n in 0..5 {
        seqs.push(publish(&*bus, &p, "feed", n).await);
    }
    let mut sub = bus
        .subscribe(&p, &filter("feed"), Some(seqs[1]))
        .await
        .unwrap();
    for (n, seq) in seqs.iter().enumerate().skip(2) {
        assert_eq!(next_event(&mut sub).await, (*seq, "feed".into(), n as u64));
    }
    let live = publish(&*bus, &p, "feed", 5).await;
    assert_eq!(next_event(&mut sub).await, (live, "feed".into(), 5));
    assert_quiet(&mut sub).await;
    // Resuming at the head replays nothing; from 0 replays everything.
    let mut at_head = bus
        .subscribe(&p, &filter("feed"), Some(live))
        .await
        .unwrap();
    assert_quiet(&mut at_head).await;
    let mut all = bus.subscribe(&p, &filter("feed"), Some(0)).await.unwrap();
    assert_eq!(next_event(&mut all).await.0, seqs[0]);
}

async fn live_subscriptions_start_at_the_head(f: &dyn BusFactory) {
    let bus = f.make(BusConfig::default()).await;
    let p = project();
    let fresh = bus.subscribe(&p, &filter("t"), None).await.unwrap();
    let first = publish(&*bus, &p, "t", 1).await;
    assert!(
        fresh.position() < first,
        "a fresh project's position precedes its first event"
    );
    let head = publish(&*bus, &p, "other", 2).await;
    let mut sub = bus.subscribe(&p, &filter("t"), None).await.unwrap();
    assert_eq!(sub.position(), head, "position is the project's head");
    assert_quiet(&mut sub).await;
    // Resuming from that position later misses nothing published since.
    let next = publish(&*bus, &p, "t", 3).await;
    drop(sub);
    let mut resumed = bus.subscribe(&p, &filter("t"), Some(head)).await.unwrap();
    assert_eq!(next_event(&mut resumed).await.0, next);
}

async fn resume_with_pattern_merges_topics(f: &dyn BusFactory) {
    let bus = f.make(BusConfig::default()).await;
    let p = project();
    let start = publish(&*bus, &p, "chat.a", 0).await;
    let mut expected = Vec::new();
    for n in 1..7 {
        let t = if n % 2 == 0 { "chat.a" } else { "chat.b" };
        expected.push(publish(&*bus, &p, t, n).await);
    }
    publish(&*bus, &p, "other", 99).await;
    let mut sub = bus
        .subscribe(&p, &filter("chat.*"), Some(start))
        .await
        .unwrap();
    for seq in expected {
        assert_eq!(next_event(&mut sub).await.0, seq);
    }
    assert_quiet(&mut sub).await;
}

async fn evicted_history_is_reported_as_gap(f: &dyn BusFactory) {
    let bus = f
        .make(BusConfig {
            retain_per_topic: 3,
            ..BusConfig::default()
        })
        .await;
    let p = project();
    let mut seqs = Vec::new();
    for n in 0..6 {
        seqs.push(publish(&*bus, &p, "log", n).await);
    }
    let mut sub = bus
        .subscribe(&p, &filter("log"), Some(seqs[0]))
        .await
        .unwrap();
    match next(&mut sub).await {
        Delivery::Gap(gap) => {
            assert_eq!(gap.reason, GapReason::Evicted);
            assert_eq!(gap.topic, Some(topic("log")));
            assert_eq!(gap.after, seqs[0]);
            assert_eq!(gap.next_seq, seqs[3]);
        }
        other => panic!("expected a gap, got {other:?}"),
    }
    for seq in &seqs[3..] {
        assert_eq!(next_event(&mut sub).await.0, *seq);
    }
    // Resuming inside the retained window has no gap.
    let mut ok = bus
        .subscribe(&p, &filter("log"), Some(seqs[2]))
        .await
        .unwrap();
    assert_eq!(next_event(&mut ok).await.0, seqs[3]);
}

async fn unknown_resume_point_is_reported(f: &dyn BusFactory) {
    let bus = f.make(BusConfig::default()).await;
    let p = project();
    let s = publish(&*bus, &p, "t", 1).await;
    let mut sub = bus
        .subscribe(&p, &filter("t"), Some(s + 1000))
        .await
        .unwrap();
    match next(&mut sub).await {
        Delivery::Gap(gap) => assert_eq!(gap.reason, GapReason::UnknownPosition),
        other => panic!("expected a gap, got {other:?}"),
    }
    assert_eq!(next_event(&mut sub).await.0, s);
}

async fn slow_subscriber_is_closed_not_skipped(f: &dyn BusFactory) {
    let bus = f
        .make(BusConfig {
            hub: HubConfig {
                queue_capacity: 4,
                ..HubConfig::default()
            },
            ..BusConfig::default()
        })
        .await;
    let p = project();
    let mut slow = bus.subscribe(&p, &filter("hot"), None).await.unwrap();
    let mut fast = bus.subscribe(&p, &filter("hot"), None).await.unwrap();
    let mut seqs = Vec::new();
    for n in 0..20 {
        // The fast subscriber keeps up; the slow one never reads.
        seqs.push(publish(&*bus, &p, "hot", n).await);
        assert_eq!(next_event(&mut fast).await.0, seqs[n as usize]);
    }
    // The slow one gets exactly what fit, in order, then the reason.
    for seq in &seqs[..4] {
        assert_eq!(next_event(&mut slow).await.0, *seq);
    }
    match next(&mut slow).await {
        Delivery::Closed(reason) => assert_eq!(reason, CloseReason::Lagged),
        other => panic!("expected lagged close, got {other:?}"),
    }
    assert!(slow.next().await.is_none());
    // It can resume from the last event it saw and miss nothing.
    let mut resumed = bus
        .subscribe(&p, &filter("hot"), Some(seqs[3]))
        .await
        .unwrap();
    for seq in &seqs[4..] {
        assert_eq!(next_event(&mut resumed).await.0, *seq);
    }
}

async fn concurrent_publishers_keep_one_order(f: &dyn BusFactory) {
    let bus = f.make(BusConfig::default()).await;
    let p = project();
    let mut sub = bus.subscribe(&p, &filter("race.*"), None).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..4u64 {
        let bus = bus.clone();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..25 {
                let t = topic(&format!("race.w{w}"));
                seqs.push(bus.publish(&p, &t, json(w * 100 + n)).await.unwrap());
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 100, "sequence numbers must be unique");
    let mut received = Vec::new();
    for _ in 0..100 {
        received.push(next_event(&mut sub).await.0);
    }
    assert_eq!(received, all, "delivery order must be sequence order");
}

async fn topics_list_counts_subscribers(f: &dyn BusFactory) {
    let bus = f.make(BusConfig::default()).await;
    let p = project();
    publish(&*bus, &p, "a.x", 1).await;
    publish(&*bus, &p, "a.x", 2).await;
    let _s1 = bus.subscribe(&p, &filter("a.x"), None).await.unwrap();
    let s2 = bus.subscribe(&p, &filter("a.*"), None).await.unwrap();
    let _s3 = bus.subscribe(&p, &filter("b"), None).await.unwrap();
    let topics = bus.topics(&p).await.unwrap();
    let names: Vec<&str> = topics.iter().map(|t| t.topic.as_str()).collect();
    assert_eq!(names, ["a.x", "b"]);
    assert_eq!(topics[0].subscribers, 2);
    assert_eq!(topics[0].retained, 2);
    assert!(topics[0].last_seq >= 2);
    assert_eq!(topics[1].subscribers, 1);
    drop(s2);
    assert_eq!(bus.topics(&p).await.unwrap()[0].subscribers, 1);
}

async fn topic_limit_is_enforced(f: &dyn BusFactory) {
    let bus = f
        .make(BusConfig {
            max_topics_per_project: 2,
            ..BusConfig::default()
        })
        .await;
    let p = project();
    publish(&*bus, &p, "one", 1).await;
    publish(&*bus, &p, "two", 2).await;
    publish(&*bus, &p, "one", 3).await;
    let err = bus.publish(&p, &topic("three"), json(4)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited);
    assert_eq!(bus.topics(&p).await.unwrap().len(), 2, "nothing changed");
}

async fn subscriptions_per_project_are_bounded(f: &dyn BusFactory) {
    let bus = f
        .make(BusConfig {
            hub: HubConfig {
                max_subscribers_per_project: 2,
                ..HubConfig::default()
            },
            ..BusConfig::default()
        })
        .await;
    let (p, other) = (project(), project());
    let first = bus.subscribe(&p, &filter("a"), None).await.unwrap();
    let mut second = bus.subscribe(&p, &filter("b.*"), None).await.unwrap();
    let err = bus.subscribe(&p, &filter("c"), None).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited);
    assert!(err.to_string().contains("open subscriptions"), "{err}");
    // Another project is not affected, and the refused one left no slot.
    let _theirs = bus.subscribe(&other, &filter("a"), None).await.unwrap();
    let _theirs_too = bus.subscribe(&other, &filter("a"), None).await.unwrap();
    let s = publish(&*bus, &p, "b.x", 1).await;
    assert_eq!(next_event(&mut second).await.0, s);
    // Ending one frees its slot.
    drop(first);
    let _third = bus.subscribe(&p, &filter("c"), None).await.unwrap();
}

async fn deleting_a_project_forgets_its_events(f: &dyn BusFactory) {
    let bus = f.make(BusConfig::default()).await;
    let (p, other) = (project(), project());
    let mut sub = bus.subscribe(&p, &filter(">"), None).await.unwrap();
    publish(&*bus, &p, "a", 1).await;
    publish(&*bus, &p, "b", 2).await;
    publish(&*bus, &p, "b", 3).await;
    let kept = publish(&*bus, &other, "a", 4).await;
    assert_eq!(bus.delete_project(&p).await.unwrap(), 3);
    let last = tokio::time::timeout(Duration::from_secs(5), async {
        let mut last = None;
        while let Some(delivery) = sub.next().await {
            last = Some(delivery);
        }
        last
    })
    .await
    .expect("the subscription ends");
    assert!(
        matches!(last, Some(Delivery::Closed(CloseReason::Revoked))),
        "{last:?}"
    );
    assert!(bus.topics(&p).await.unwrap().is_empty());
    let theirs = bus.topics(&other).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].last_seq, kept);
    // Again: nothing left to remove.
    assert_eq!(bus.delete_project(&p).await.unwrap(), 0);
}

async fn retained_bytes_are_bounded_per_project(f: &dyn BusFactory) {
    const CAP: usize = 5000;
    let bus = f
        .make(BusConfig {
            max_retained_bytes_per_project: CAP,
            ..BusConfig::default()
        })
        .await;
    let (p, other) = (project(), project());
    let pad = "x".repeat(1000);
    let big = |n: u64| Payload::from_value(&serde_json::json!({ "n": n, "pad": pad }));
    let retained = |infos: Vec<crate::events::TopicInfo>, name: &str| {
        infos
            .iter()
            .find(|t| t.topic.as_str() == name)
            .map_or(0, |t| t.retained)
    };
    let mut last_a = 0;
    for n in 0..10 {
        last_a = bus.publish(&p, &topic("a"), big(n)).await.unwrap();
    }
    // About 1.1 KB each: four fit under 5000 bytes.
    let infos = bus.topics(&p).await.unwrap();
    assert_eq!(retained(infos.clone(), "a"), 4, "{infos:?}");
    publish(&*bus, &other, "a", 1).await;
    publish(&*bus, &other, "a", 2).await;
    // A new topic takes room from the largest one; the topic being
    // published to then gives up its own oldest first.
    let mut last_b = 0;
    for n in 0..3 {
        last_b = bus.publish(&p, &topic("b"), big(n)).await.unwrap();
    }
    let infos = bus.topics(&p).await.unwrap();
    let (a, b) = (retained(infos.clone(), "a"), retained(infos.clone(), "b"));
    assert!(a + b <= 4 && a >= 1 && b >= 1, "{infos:?}");
    // The newest events are the ones kept.
    let mut sub = bus
        .subscribe(&p, &filter("a"), Some(last_a - 1))
        .await
        .unwrap();
    assert_eq!(next_event(&mut sub).await.0, last_a);
    let mut sub = bus
        .subscribe(&p, &filter("b"), Some(last_b - 1))
        .await
        .unwrap();
    assert_eq!(next_event(&mut sub).await.0, last_b);
    // Other projects keep everything.
    assert_eq!(retained(bus.topics(&other).await.unwrap(), "a"), 2);
}

async fn shutdown_closes_subscribers(f: &dyn BusFactory) {
    let bus = f.make(BusConfig::default()).await;
    let p = project();
    let mut sub = bus.subscribe(&p, &filter("t"), None).await.unwrap();
    let s = publish(&*bus, &p, "t", 1).await;
    assert_eq!(next_event(&mut sub).await.0, s);
    bus.shut_down();
    match next(&mut sub).await {
        Delivery::Closed(reason) => assert_eq!(reason, CloseReason::Shutdown),
        other => panic!("expected shutdown, got {other:?}"),
    }
    let err = bus.subscribe(&p, &filter("t"), None).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable);
}
