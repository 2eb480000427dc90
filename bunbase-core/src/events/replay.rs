//! Resuming a subscription after a sequence number.

use std::sync::Arc;

use super::model::{Delivery, Event, Gap, GapReason, Topic};

/// What to send a resuming subscriber before it goes live.
pub struct ReplayPlan {
    pub deliveries: Vec<Delivery>,
    /// The resume point in effect (0 when the requested one was unknown).
    pub after: u64,
}

/// Where a bus's history stands, for planning a replay.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// Sequence numbers at or below this were issued before this bus's
    /// history began (an in-memory bus that restarted); 0 for none.
    pub floor: u64,
    /// The newest sequence number issued for the project.
    pub head: u64,
}

/// Plans the replay for a subscriber resuming after `after`.
///
/// `histories` holds, per matching topic, its retained events oldest first
/// (events newer than `span.head` are ignored: they reach the subscriber
/// through its live queue). Each event carries `prev_seq`, the previous seq on
/// its topic, so if the oldest retained event's predecessor is newer than
/// `after`, events of that topic were evicted: the subscriber gets a [`Gap`].
/// A resume point this bus can't know (ahead of its head, or from before its
/// history began) gets a gap too, and everything retained is replayed.
pub fn plan(after: u64, span: Span, histories: Vec<(Topic, Vec<Arc<Event>>)>) -> ReplayPlan {
    let mut gaps = Vec::new();
    let mut after = after;
    let before_history = after > 0 && after < span.floor;
    if after > span.head || before_history {
        gaps.push(Delivery::Gap(Gap {
            topic: None,
            after,
            next_seq: 0,
            reason: GapReason::UnknownPosition,
        }));
        after = 0;
    }
    let mut events: Vec<Arc<Event>> = Vec::new();
    for (topic, history) in histories {
        let Some(oldest) = history.first() else {
            continue;
        };
        if oldest.prev_seq > after {
            gaps.push(Delivery::Gap(Gap {
                topic: Some(topic),
                after,
                next_seq: oldest.seq,
                reason: GapReason::Evicted,
            }));
        }
        events.extend(
            history
                .into_iter()
                .filter(|e| e.seq > after && e.seq <= span.head),
        );
    }
    events.sort_by_key(|e| e.seq);
    gaps.extend(events.into_iter().map(Delivery::Event));
    ReplayPlan {
        deliveries: gaps,
        after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::model::Payload;

    fn ev(seq: u64, prev: u64, topic: &str) -> Arc<Event> {
        Arc::new(Event::new(
            seq,
            prev,
            Topic::new(topic).unwrap(),
            Payload::from_value(&serde_json::json!(seq)),
            0,
        ))
    }

    fn seqs(plan: &ReplayPlan) -> Vec<String> {
        plan.deliveries
            .iter()
            .map(|d| match d {
                Delivery::Event(e) => e.seq.to_string(),
                Delivery::Gap(g) => format!("gap:{}", g.topic.as_ref().map_or("*", |t| t.as_str())),
                Delivery::Closed(_) => "closed".into(),
            })
            .collect()
    }

    #[test]
    fn merges_topics_in_seq_order() {
        let a = Topic::new("a").unwrap();
        let b = Topic::new("b").unwrap();
        let p = plan(
            2,
            Span { floor: 0, head: 6 },
            vec![
                (a, vec![ev(1, 0, "a"), ev(3, 1, "a"), ev(6, 3, "a")]),
                (b, vec![ev(2, 0, "b"), ev(4, 2, "b"), ev(5, 4, "b")]),
            ],
        );
        assert_eq!(seqs(&p), ["3", "4", "5", "6"]);
    }

    #[test]
    fn reports_evicted_history() {
        let a = Topic::new("a").unwrap();
        // Events 1..=3 of topic a were evicted; 4 remains (prev 3).
        let p = plan(
            1,
            Span { floor: 0, head: 5 },
            vec![(a, vec![ev(4, 3, "a"), ev(5, 4, "a")])],
        );
        assert_eq!(seqs(&p), ["gap:a", "4", "5"]);
        // Resuming at 3 misses nothing.
        let a = Topic::new("a").unwrap();
        let p = plan(
            3,
            Span { floor: 0, head: 5 },
            vec![(a, vec![ev(4, 3, "a"), ev(5, 4, "a")])],
        );
        assert_eq!(seqs(&p), ["4", "5"]);
    }

    #[test]
    fn unknown_positions_replay_everything_after_a_gap() {
        let a = Topic::new("a").unwrap();
        let p = plan(
            99,
            Span { floor: 0, head: 2 },
            vec![(a, vec![ev(1, 0, "a"), ev(2, 1, "a")])],
        );
        assert_eq!(seqs(&p), ["gap:*", "1", "2"]);
        assert_eq!(p.after, 0);
    }

    #[test]
    fn positions_from_before_the_history_began_are_unknown() {
        let a = Topic::new("a").unwrap();
        let p = plan(
            5,
            Span {
                floor: 100,
                head: 102,
            },
            vec![(a, vec![ev(101, 0, "a"), ev(102, 101, "a")])],
        );
        assert_eq!(seqs(&p), ["gap:*", "101", "102"]);
        // 0 means "everything you have": no gap.
        let a = Topic::new("a").unwrap();
        let p = plan(
            0,
            Span {
                floor: 100,
                head: 102,
            },
            vec![(a, vec![ev(101, 0, "a"), ev(102, 101, "a")])],
        );
        assert_eq!(seqs(&p), ["101", "102"]);
    }

    #[test]
    fn events_after_the_head_are_left_to_the_live_queue() {
        let a = Topic::new("a").unwrap();
        let b = Topic::new("b").unwrap();
        // History of b was read after event 11 was published; head was 9.
        let p = plan(
            5,
            Span { floor: 0, head: 9 },
            vec![
                (a, vec![ev(9, 0, "a")]),
                (b, vec![ev(6, 0, "b"), ev(11, 6, "b")]),
            ],
        );
        assert_eq!(seqs(&p), ["6", "9"]);
    }
}
