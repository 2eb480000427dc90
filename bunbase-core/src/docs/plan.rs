//! The query planner: picks how to find a query's documents — an index
//! lookup, an index read in sort order, or a scan in `_id` order — and
//! runs it against a [`DocStore`]. Every candidate is still checked
//! against the whole filter and the query's position (the reference
//! semantics of [`super::query`]), so an index only ever narrows what is
//! read; it never changes an answer.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::Serialize;
use serde_json::{Value, json};

use super::filter::{Compare, Condition, Filter};
use super::index::{ARRAYS, ELEMENTS, VALUES};
use super::keys;
use super::model::{Collection, Index};
use super::path::Path;
use super::query::{Direction, Page, Query};
use super::store::{DocStore, KeyRange};
use crate::error::Error;
use crate::id::ProjectId;

/// How a query finds its documents.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Every document, in `_id` order.
    Scan,
    /// Index entries in `ranges`; `ordered` when they come in the query's
    /// order (then reading stops once the page is full).
    Index {
        index: String,
        ranges: Vec<KeyRange>,
        ordered: bool,
        /// Whether the index narrows by the filter (not only serves the
        /// sort).
        lookup: bool,
        /// Also read every document with an array in an indexed field:
        /// value entries hold whole values, so an equality prefix on them
        /// misses documents whose array merely contains the value.
        arrays: bool,
    },
}

/// What running a query did (explain, metrics).
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// `index` or `scan`.
    pub plan: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// Whether the index (or `_id` order) delivered the sort order.
    pub ordered: bool,
    pub examined: usize,
    pub returned: usize,
}

/// A field's usable conditions among the filter's top-level conjuncts.
#[derive(Default)]
struct Bounds {
    eq: Option<Value>,
    in_values: Option<Vec<Value>>,
    lower: Option<(Value, bool)>,
    upper: Option<(Value, bool)>,
}

/// Values an index lookup can find by element entries: not arrays (a
/// filter array also matches an equal whole array, which only value
/// entries hold).
fn lookup_value(v: &Value) -> bool {
    !v.is_array()
}

fn conjuncts(filter: &Filter) -> Vec<&Filter> {
    match filter {
        Filter::And(parts) => parts.iter().collect(),
        other => vec![other],
    }
}

fn field_bounds(filter: &Filter) -> BTreeMap<String, Bounds> {
    let mut out: BTreeMap<String, Bounds> = BTreeMap::new();
    for part in conjuncts(filter) {
        let Filter::Field(path, conditions) = part else {
            continue;
        };
        let bounds = out.entry(path.as_string()).or_default();
        for condition in conditions {
            match condition {
                Condition::Compare(Compare::Eq, v) if lookup_value(v) => {
                    bounds.eq = Some(v.clone())
                }
                Condition::Compare(op @ (Compare::Gt | Compare::Gte), v) => {
                    bounds.lower = Some((v.clone(), *op == Compare::Gte))
                }
                Condition::Compare(op @ (Compare::Lt | Compare::Lte), v) => {
                    bounds.upper = Some((v.clone(), *op == Compare::Lte))
                }
                Condition::In(values) if values.iter().all(lookup_value) && !values.is_empty() => {
                    bounds.in_values = Some(values.clone())
                }
                _ => {}
            }
        }
    }
    out
}

fn after_prefix(prefix: &[u8]) -> Bound<Vec<u8>> {
    keys::successor_prefix(prefix).map_or(Bound::Unbounded, Bound::Excluded)
}

/// The element-entry ranges for an index whose first `eq.len()` fields
/// are bound by equality, optionally with `next` bounding the next field.
fn lookup_ranges(eq: &[&Value], next: Option<&Bounds>) -> Vec<KeyRange> {
    let mut prefix = vec![ELEMENTS];
    for value in eq {
        keys::encode(&mut prefix, value);
    }
    let range = |lower, upper| KeyRange {
        lower,
        upper,
        reverse: false,
    };
    let Some(next) = next else {
        return vec![range(
            Bound::Included(prefix.clone()),
            after_prefix(&prefix),
        )];
    };
    if let Some(values) = &next.in_values {
        return values
            .iter()
            .map(|v| {
                let mut key = prefix.clone();
                keys::encode(&mut key, v);
                range(Bound::Included(key.clone()), after_prefix(&key))
            })
            .collect();
    }
    // A range: within the bound values' type (ordering operators compare
    // one type only). With both bounds only the lower one narrows: an
    // array may meet `$gte` with one element and `$lt` with another (as
    // on a MongoDB multikey index).
    let upper_bound = if next.lower.is_some() {
        None
    } else {
        next.upper.as_ref()
    };
    let typed = next
        .lower
        .as_ref()
        .or(next.upper.as_ref())
        .map(|(v, _)| v.clone())
        .unwrap_or(Value::Null);
    let (type_low, type_high) = keys::type_bounds(&typed);
    let with = |tail: &[u8]| [prefix.as_slice(), tail].concat();
    let lower = match &next.lower {
        Some((v, inclusive)) => {
            let mut key = prefix.clone();
            keys::encode(&mut key, v);
            if *inclusive {
                Bound::Included(key)
            } else {
                // Past every entry whose value is `v` (whatever follows it).
                match keys::successor_prefix(&key) {
                    Some(next) => Bound::Included(next),
                    None => Bound::Excluded(key),
                }
            }
        }
        None => Bound::Included(with(&type_low)),
    };
    let upper = match upper_bound {
        Some((v, inclusive)) => {
            let mut key = prefix.clone();
            keys::encode(&mut key, v);
            if *inclusive {
                after_prefix(&key)
            } else {
                Bound::Excluded(key)
            }
        }
        None => Bound::Excluded(with(&type_high)),
    };
    vec![range(lower, upper)]
}

/// Picks the plan for `query` on `collection`.
pub fn plan(collection: &Collection, query: &Query) -> Plan {
    let bounds = field_bounds(&query.filter);
    // The best lookup: most leading fields bound by equality, then a
    // range or $in on the next one.
    let mut best: Option<(usize, bool, &Index, Vec<KeyRange>)> = None;
    for index in &collection.indexes {
        let names: Vec<String> = index.fields.iter().map(Path::as_string).collect();
        let eq: Vec<&Value> = names
            .iter()
            .map_while(|n| bounds.get(n).and_then(|b| b.eq.as_ref()))
            .collect();
        let full = eq.len() == names.len();
        let next = names
            .get(eq.len())
            .and_then(|n| bounds.get(n))
            .filter(|b| b.in_values.is_some() || b.lower.is_some() || b.upper.is_some());
        if eq.is_empty() && next.is_none() {
            continue;
        }
        let score = eq.len() * 2 + usize::from(next.is_some());
        if best.as_ref().is_none_or(|(s, ..)| score > *s) {
            best = Some((score, full, index, lookup_ranges(&eq, next)));
        }
    }
    // With a sort, an index holding the equality fields then the sort
    // fields reads in order.
    let ordered_index = sorted_index(collection, query, &bounds);
    if let Some((index, eq)) = ordered_index.as_ref().filter(|(_, eq)| !eq.is_empty()) {
        return sorted_plan(index, eq, query);
    }
    if let Some((_, full, index, mut ranges)) = best {
        // All fields equal, no sort: entries come in `_id` order.
        let ordered = full && query.sort.is_empty() && ranges.len() == 1;
        if ordered
            && !index.unique
            && let Some(id) = query.after.as_ref().and_then(|a| a.last()?.as_str())
            && let Bound::Included(prefix) = &ranges[0].lower
        {
            let mut key = prefix.clone();
            keys::encode_str(&mut key, id);
            ranges[0].lower = Bound::Excluded(key);
        }
        return Plan::Index {
            index: index.name.clone(),
            ranges,
            ordered,
            lookup: true,
            arrays: false,
        };
    }
    if let Some((index, eq)) = &ordered_index {
        return sorted_plan(index, eq, query);
    }
    Plan::Scan
}

/// An index whose fields are equality-bound fields, then exactly the sort
/// fields (all sorted one way): it and the equality values.
fn sorted_index<'a, 'q>(
    collection: &'a Collection,
    query: &Query,
    bounds: &'q BTreeMap<String, Bounds>,
) -> Option<(&'a Index, Vec<&'q Value>)> {
    let direction = query.sort.first()?.1;
    if query.sort.iter().any(|(_, d)| *d != direction) {
        return None;
    }
    collection
        .indexes
        .iter()
        .filter_map(|index| {
            let k = index.fields.len().checked_sub(query.sort.len())?;
            let sorts = index.fields[k..]
                .iter()
                .zip(&query.sort)
                .all(|(f, (s, _))| f == s);
            let eq: Vec<&Value> = index.fields[..k]
                .iter()
                .map_while(|f| bounds.get(&f.as_string()).and_then(|b| b.eq.as_ref()))
                .collect();
            (sorts && eq.len() == k).then_some((index, eq))
        })
        .max_by_key(|(_, eq)| eq.len())
}

/// Reads value entries under the equality values in the sort direction,
/// from the cursor on.
fn sorted_plan(index: &Index, eq: &[&Value], query: &Query) -> Plan {
    let reverse = query.sort[0].1 == Direction::Desc;
    let mut prefix = vec![VALUES];
    for value in eq {
        keys::encode(&mut prefix, value);
    }
    let mut range = KeyRange {
        lower: Bound::Included(prefix.clone()),
        upper: after_prefix(&prefix),
        reverse,
    };
    if let Some(after) = &query.after {
        let mut key = prefix;
        for value in &after[..after.len() - 1] {
            keys::encode(&mut key, value);
        }
        if let Some(id) = after.last().and_then(Value::as_str) {
            keys::encode_str(&mut key, id);
            if reverse {
                range.upper = Bound::Excluded(key);
            } else {
                range.lower = Bound::Excluded(key);
            }
        }
    }
    Plan::Index {
        index: index.name.clone(),
        ranges: vec![range],
        ordered: true,
        lookup: !eq.is_empty(),
        arrays: !eq.is_empty(),
    }
}

/// The index that would serve `query`: its equality fields, then a range
/// field, then the sort fields (for the error that names it).
pub fn missing_index(query: &Query) -> Option<Vec<String>> {
    let bounds = field_bounds(&query.filter);
    let mut fields: Vec<String> = bounds
        .iter()
        .filter(|(_, b)| b.eq.is_some())
        .map(|(f, _)| f.clone())
        .collect();
    if query.sort.is_empty() {
        fields.extend(
            bounds
                .iter()
                .filter(|(_, b)| {
                    b.eq.is_none()
                        && (b.lower.is_some() || b.upper.is_some() || b.in_values.is_some())
                })
                .map(|(f, _)| f.clone())
                .take(1),
        );
    } else {
        // Equality fields then the sort fields read in order (a range
        // can't be combined with a sort on another field).
        let sorted = query.sort.iter().map(|(p, _)| p.as_string());
        fields.extend(sorted.filter(|f| !fields.contains(f)).collect::<Vec<_>>());
    }
    (!fields.is_empty()).then_some(fields)
}

/// The documents a run found (or, counting, only how many).
struct Hits {
    docs: Vec<Value>,
    count: usize,
    keep: bool,
}

impl Hits {
    fn push(&mut self, doc: Value) {
        self.count += 1;
        if self.keep {
            self.docs.push(doc);
        }
    }
}

/// Runs a plan: a page of the documents `allowed` lets through (the
/// caller's list rule), in the query's order.
pub struct Run<'a> {
    pub store: &'a dyn DocStore,
    pub project: &'a ProjectId,
    pub collection: &'a Collection,
    pub query: &'a Query,
    /// Most documents one query may examine without an index narrowing
    /// it (unless the collection allows scans).
    pub max_scan: usize,
    pub allowed: &'a (dyn Fn(&Value) -> bool + Sync),
    /// The caller is under rules: whatever the plan, it examines at most
    /// `max_scan` documents (what its rules hide costs as much to read as
    /// what they show).
    pub ruled: bool,
}

impl Run<'_> {
    fn too_many(&self) -> Error {
        let head = format!(
            "this query would examine more than {} documents of {}",
            self.max_scan, self.collection.name
        );
        let suggested = missing_index(self.query).filter(|fields| {
            !self
                .collection
                .indexes
                .iter()
                .any(|i| i.fields.iter().map(Path::as_string).collect::<Vec<_>>() == *fields)
        });
        Error::invalid(match suggested {
            Some(fields) => format!(
                "{head} without an index; add one: {} (or set allow_scans on the collection)",
                json!({ "fields": fields })
            ),
            None => format!(
                "{head}: no index narrows it further; narrow the filter, or set allow_scans on the collection"
            ),
        })
    }

    fn wanted(&self, doc: &Value) -> bool {
        self.query.filter.matches(doc)
            && (self.allowed)(doc)
            && self.query.after.as_ref().is_none_or(|after| {
                self.query
                    .compare_positions(&self.query.position(doc), after)
                    .is_gt()
            })
    }

    /// A page of results, and what it took.
    pub async fn page(&self) -> Result<(Page, Stats), Error> {
        let (hits, mut stats) = self.collect(Some(self.query.limit + 1)).await?;
        let hits = hits.docs;
        // Already filtered and past the cursor: the reference evaluator
        // only sorts and cuts the page here.
        let mut query = self.query.clone();
        query.filter = Filter::And(Vec::new());
        query.after = None;
        let page = query.run(&hits);
        stats.returned = page.documents.len();
        Ok((page, stats))
    }

    /// How many documents match.
    pub async fn count(&self) -> Result<usize, Error> {
        Ok(self.collect(None).await?.0.count)
    }

    /// The matching documents: at least `want` of the first in the
    /// query's order when the plan reads in order, else all.
    async fn collect(&self, want: Option<usize>) -> Result<(Hits, Stats), Error> {
        let plan = plan(self.collection, self.query);
        let limited = !self.collection.allow_scans;
        let (index, ordered, lookup) = match &plan {
            Plan::Scan => (None, self.query.sort.is_empty(), false),
            Plan::Index {
                index,
                ordered,
                lookup,
                ..
            } => (Some(index.clone()), *ordered, *lookup),
        };
        let budget = (self.ruled || (limited && !lookup)).then_some(self.max_scan);
        let mut examined = 0usize;
        // A count keeps no documents, and needs no sorting, so an index
        // lookup may find any number.
        let counting = want.is_none();
        let mut hits = Hits {
            docs: Vec::new(),
            count: 0,
            keep: !counting,
        };
        let want = want.unwrap_or(usize::MAX);
        // In order, read a page's worth, then growing chunks (an index that
        // covers the filter fills the page in one read); otherwise all.
        let mut chunk = if ordered { want.min(1000) } else { 1000 };
        match &plan {
            Plan::Scan => {
                let mut after = self
                    .query
                    .after
                    .as_ref()
                    .filter(|_| ordered)
                    .and_then(|a| a.last().and_then(Value::as_str).map(str::to_string));
                loop {
                    let docs = self
                        .store
                        .scan(self.project, &self.collection.name, after.as_deref(), chunk)
                        .await?;
                    let done = docs.len() < chunk;
                    after = docs
                        .last()
                        .and_then(|d| d["_id"].as_str())
                        .map(str::to_string);
                    for doc in docs {
                        examined += 1;
                        if self.wanted(&doc) {
                            hits.push(doc);
                        }
                    }
                    if budget.is_some_and(|max| examined > max) {
                        return Err(self.too_many());
                    }
                    if done || (ordered && hits.count >= want) {
                        break;
                    }
                    chunk = (chunk * 4).min(1000);
                }
            }
            Plan::Index {
                index,
                ranges,
                arrays,
                ..
            } => {
                let mut seen = std::collections::HashSet::new();
                if *arrays {
                    // Few documents, usually: they join the page wherever
                    // they sort (the top of the union is the top of the
                    // in-order read's top and these).
                    let all = KeyRange {
                        lower: Bound::Included(vec![ARRAYS]),
                        upper: Bound::Excluded(vec![ARRAYS + 1]),
                        reverse: false,
                    };
                    let entries = self
                        .store
                        .scan_index(
                            self.project,
                            &self.collection.name,
                            index,
                            &all,
                            self.max_scan + 1,
                        )
                        .await?;
                    if limited && entries.len() > self.max_scan {
                        return Err(self.too_many());
                    }
                    for (_, doc) in entries {
                        examined += 1;
                        let id = doc["_id"].as_str().unwrap_or_default().to_string();
                        if seen.insert(id) && self.wanted(&doc) {
                            hits.push(doc);
                        }
                    }
                }
                let mut streamed = 0;
                for range in ranges {
                    let mut range = range.clone();
                    loop {
                        let entries = self
                            .store
                            .scan_index(self.project, &self.collection.name, index, &range, chunk)
                            .await?;
                        let done = entries.len() < chunk;
                        if let Some((key, _)) = entries.last() {
                            if range.reverse {
                                range.upper = Bound::Excluded(key.clone());
                            } else {
                                range.lower = Bound::Excluded(key.clone());
                            }
                        }
                        for (_, doc) in entries {
                            examined += 1;
                            let id = doc["_id"].as_str().unwrap_or_default().to_string();
                            if seen.insert(id) && self.wanted(&doc) {
                                hits.push(doc);
                                streamed += 1;
                            }
                        }
                        if (budget.is_some_and(|max| examined > max))
                            || (!ordered && !counting && limited && seen.len() > self.max_scan)
                        {
                            return Err(self.too_many());
                        }
                        if done || (ordered && streamed >= want) {
                            break;
                        }
                        chunk = (chunk * 4).min(1000);
                    }
                }
            }
        }
        let stats = Stats {
            plan: if index.is_some() { "index" } else { "scan" },
            index,
            ordered,
            examined,
            returned: hits.count,
        };
        Ok((hits, stats))
    }
}
