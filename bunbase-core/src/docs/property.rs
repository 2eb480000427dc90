//! The property every store must hold: random documents and random
//! queries give, page after page, exactly what the reference evaluator
//! ([`Query::run`] over all documents in memory) gives — whatever plan the
//! planner picks (index lookups, index order, scans) on that store.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::query::Query;
use super::store::DocStore;
use super::{Bundoc, DocsLimits, DocsMetrics, WriteOp};
use crate::auth::{Principal, PrincipalKind, Rights};
use crate::events::adapters::BusConfig;
use crate::events::adapters::memory::MemoryBus;
use crate::events::{EventLimits, EventMetrics, Events};
use crate::id::{ProjectId, random_hex};

const CITIES: [&str; 4] = ["Oslo", "Bergen", "oslo", ""];

fn scalar(rng: &mut StdRng) -> Value {
    match rng.random_range(0..9) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => json!(rng.random_range(-3..4)),
        3 => json!(f64::from(rng.random_range(-30..30)) / 4.0),
        4 | 5 => json!(CITIES[rng.random_range(0..CITIES.len())]),
        6 => json!(u64::MAX - rng.random_range(0..2)),
        7 => json!(9_007_199_254_740_992_i64 + rng.random_range(0..3)),
        _ => json!({"x": rng.random_range(0..2)}),
    }
}

/// A value for a field: usually a scalar, sometimes an array of them.
fn value(rng: &mut StdRng) -> Value {
    if rng.random_bool(0.2) {
        Value::Array((0..rng.random_range(0..4)).map(|_| scalar(rng)).collect())
    } else {
        scalar(rng)
    }
}

fn document(rng: &mut StdRng, i: usize) -> Value {
    let mut doc = json!({ "_id": format!("{}{i:03}", ["A", "a", "B", "b-", "_"][i % 5]) });
    for field in ["city", "n", "tags"] {
        if rng.random_bool(0.85) {
            doc[field] = value(rng);
        }
    }
    if rng.random_bool(0.7) {
        doc["meta"] = json!({ "rank": scalar(rng) });
    }
    // Arrays of objects: `items.sku` reads through them.
    match rng.random_range(0..4) {
        0 => {}
        1 => doc["items"] = json!({ "sku": value(rng) }),
        _ => {
            doc["items"] = (0..rng.random_range(0..4))
                .map(|_| {
                    if rng.random_bool(0.8) {
                        json!({ "sku": value(rng) })
                    } else {
                        json!({ "other": 1 })
                    }
                })
                .collect()
        }
    }
    doc
}

fn condition(rng: &mut StdRng) -> Value {
    let arg = scalar(rng);
    let ordered = if arg.is_null() || arg.is_object() {
        json!(1)
    } else {
        arg.clone()
    };
    match rng.random_range(0..10) {
        0 | 1 => arg,
        2 => json!({"$ne": arg}),
        3 => json!({"$gt": ordered}),
        4 => json!({"$gte": ordered, "$lt": scalar(rng)})
            .as_object()
            .map_or(json!({"$gte": 0}), |m| {
                // $lt takes a number, string or boolean.
                let mut m = m.clone();
                if matches!(m["$lt"], Value::Null | Value::Object(_)) {
                    m.insert("$lt".into(), json!(2));
                }
                Value::Object(m)
            }),
        5 => json!({"$lte": ordered}),
        6 => json!({"$in": [scalar(rng), scalar(rng)]}),
        7 => json!({"$nin": [scalar(rng)]}),
        8 => json!({"$exists": rng.random_bool(0.5)}),
        _ => json!({"$not": {"$eq": arg}}),
    }
}

fn filter(rng: &mut StdRng) -> Value {
    let fields = ["city", "n", "tags", "meta.rank", "items.sku", "items.0.sku"];
    let mut out = serde_json::Map::new();
    for _ in 0..rng.random_range(0..3) {
        out.insert(
            fields[rng.random_range(0..fields.len())].into(),
            condition(rng),
        );
    }
    if rng.random_bool(0.15) {
        out.insert(
            "$or".into(),
            json!([{"city": condition(rng)}, {"n": condition(rng)}]),
        );
    }
    Value::Object(out)
}

fn sort(rng: &mut StdRng) -> Value {
    let d = |rng: &mut StdRng| if rng.random_bool(0.5) { "asc" } else { "desc" };
    match rng.random_range(0..8) {
        0 | 1 => json!([]),
        2 => json!([{"n": d(rng)}]),
        3 => {
            let dir = d(rng);
            json!([{"city": dir}, {"n": dir}])
        }
        4 => json!([{"meta.rank": d(rng)}, {"city": d(rng)}]),
        5 => json!([{"meta.rank": d(rng)}]),
        6 => json!([{"items.sku": d(rng)}]),
        _ => json!([{"_id": d(rng)}]),
    }
}

/// Every page of `body`, through `next_cursor`.
async fn all_pages(
    docs: &Bundoc,
    who: &Principal,
    project: &ProjectId,
    body: &Value,
) -> Vec<Value> {
    let mut body = body.clone();
    let mut out = Vec::new();
    for _ in 0..1000 {
        let page = docs
            .query(who, project, "things", &body)
            .await
            .unwrap_or_else(|e| panic!("{body}: {e}"));
        out.extend(page.documents);
        match page.next_cursor {
            Some(cursor) => body["cursor"] = json!(cursor),
            None => return out,
        }
    }
    panic!("{body}: more than 1000 pages")
}

fn reference(all: &[Value], body: &Value) -> Vec<Value> {
    let mut body = body.clone();
    let mut out = Vec::new();
    loop {
        let page = Query::parse(&body)
            .unwrap_or_else(|e| panic!("{body}: {e}"))
            .run(all);
        out.extend(page.documents);
        match page.next_cursor {
            Some(cursor) => body["cursor"] = json!(cursor),
            None => return out,
        }
    }
}

/// Runs `queries` random queries over `documents` random documents on
/// `store`, comparing every answer with the reference evaluator.
pub async fn run(store: Arc<dyn DocStore>, seed: u64, documents: usize, queries: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let metrics = Arc::new(EventMetrics::unregistered());
    let events = Events::new(
        Arc::new(MemoryBus::new(BusConfig::default(), metrics.clone())),
        EventLimits::default(),
        metrics,
    );
    let docs = Bundoc::new(
        store,
        events,
        None,
        DocsLimits::default(),
        Arc::new(DocsMetrics::unregistered()),
    );
    let project =
        ProjectId::new(format!("prop{}", random_hex(4))).unwrap_or_else(|e| panic!("{e}"));
    let who = Principal {
        subject: "tester".into(),
        kind: PrincipalKind::SecretKey,
        project: project.clone(),
        rights: Rights::ALL,
    };
    let definition = json!({
        "name": "things",
        "allow_scans": true,
        "indexes": [
            {"fields": ["city"]}, {"fields": ["n"]}, {"fields": ["city", "n"]},
            {"fields": ["tags"]}, {"fields": ["meta.rank", "city"]},
            {"fields": ["city", "meta.rank"]},
            {"fields": ["items.sku"]}, {"fields": ["meta.rank", "items.sku"]},
        ],
    });
    docs.create_collection(&who, &project, &definition)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ops = Vec::new();
    for i in 0..documents {
        let mut doc = document(&mut rng, i);
        // A compound index takes one array field: keep `city` scalar
        // where `n` is an array.
        if doc["city"].is_array() && doc["n"].is_array() {
            doc["city"] = json!("Oslo");
        }
        ops.push(WriteOp::Create { doc });
    }
    let mut stored = Vec::new();
    for chunk in ops.chunks(100) {
        stored.extend(
            docs.batch(&who, &project, "things", chunk.to_vec())
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    for _ in 0..queries {
        let body = json!({
            "filter": filter(&mut rng),
            "sort": sort(&mut rng),
            "limit": rng.random_range(1..25),
        });
        let got = all_pages(&docs, &who, &project, &body).await;
        let want = reference(&stored, &body);
        let ids =
            |docs: &[Value]| -> Vec<String> { docs.iter().map(|d| d["_id"].to_string()).collect() };
        assert_eq!(ids(&got), ids(&want), "query {body}");
        assert_eq!(got, want, "query {body}");
        let count = docs
            .count(&who, &project, "things", &body["filter"])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(count, want.len(), "count {body}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docs::adapters::MemoryDocStore;

    #[tokio::test]
    async fn memory_store_agrees_with_the_reference() {
        for seed in 0..2 {
            run(Arc::new(MemoryDocStore::new()), seed, 300, 150).await;
        }
    }
}
