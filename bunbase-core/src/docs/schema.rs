//! Collection schemas: an optional JSON Schema per collection, checked on
//! every write.
//!
//! A bounded subset of draft 2020-12, implemented here (the `jsonschema`
//! crate would add 35 crates and about a minute of release build). Every
//! keyword outside the subset is refused when the schema is set, never
//! silently ignored, so a schema never promises a check it does not make.
//!
//! Supported:
//! - any type: `type` (a name or an array of names; `integer` is any
//!   number with no fractional part), `enum`, `const`, `allOf`, `anyOf`,
//!   `oneOf`, `not`, `$ref`, boolean schemas `true` / `false`;
//! - objects: `properties`, `required`, `additionalProperties` (boolean or
//!   schema), `minProperties`, `maxProperties`;
//! - arrays: `items` (one schema for every item), `minItems`, `maxItems`,
//!   `uniqueItems`;
//! - numbers: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`
//!   (numbers, as in 2020-12), `multipleOf` (exact on the numbers'
//!   decimal forms);
//! - strings: `minLength`, `maxLength` (in code points);
//! - structure: `$defs` and local `$ref`s only (`#` or a JSON pointer
//!   such as `#/$defs/address`); `$schema` (2020-12 only) and `$id` at the
//!   root; the annotations `title`, `description`, `$comment`, `default`,
//!   `examples`, `deprecated`, `readOnly`, `writeOnly`.
//!
//! Not supported (refused): `pattern` and `patternProperties` (no regex
//! engine in core), `format`, `prefixItems`, `contains`, `if`/`then`/
//! `else`, `dependent*`, `propertyNames`, `unevaluated*`, anchors and
//! remote `$ref`s (never fetched).
//!
//! Values are equal as in [`super::order`] (`1` equals `1.0`), as JSON
//! Schema says. Checking is bounded: a `$ref` loop that never descends
//! into the document is refused up front, and a check that would take
//! more than [`MAX_STEPS`] steps fails instead of running on.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Number, Value};

use super::order::{compare, equal};
use crate::error::Error;

/// Largest schema, as compact JSON.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Deepest nesting of subschemas inside one another.
pub const MAX_SCHEMA_DEPTH: usize = 64;
/// Most steps in one check: one per subschema application, plus the work
/// that grows with a value — a step per key walked, per 64 bytes of a
/// string measured, per value of an `enum` or `const` compared (the
/// document's size times the schema's fan-out bounds it; a pathological
/// pair stops here).
pub const MAX_STEPS: usize = 1_000_000;
/// Violations listed in one error.
pub const MAX_REPORTED: usize = 5;
/// Deepest chain of subschema applications while checking (keeps the
/// stack bounded whatever `$ref` chains a schema builds).
const MAX_APPLY_DEPTH: usize = 256;

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

const SUPPORTED: &str = "type, enum, const, properties, required, additionalProperties, \
    minProperties, maxProperties, items, minItems, maxItems, uniqueItems, minimum, maximum, \
    exclusiveMinimum, exclusiveMaximum, multipleOf, minLength, maxLength, allOf, anyOf, \
    oneOf, not, $defs, $ref (local), $schema, $id, and annotations";

/// A compiled schema, cheap to clone.
#[derive(Clone, Debug)]
pub struct Schema {
    source: Arc<Value>,
    /// Every subschema; 0 is the root. `$ref`s are indexes, so recursive
    /// schemas are plain cycles here.
    nodes: Arc<[Node]>,
}

#[derive(Debug, Default)]
struct Node {
    /// The `false` schema.
    never: bool,
    types: Option<Types>,
    enum_values: Option<Vec<Value>>,
    constant: Option<Value>,
    properties: BTreeMap<String, usize>,
    required: Vec<String>,
    additional: Option<usize>,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    items: Option<usize>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    unique_items: bool,
    /// Bounds, as `Value::Number`s to compare in the total order.
    minimum: Option<Value>,
    maximum: Option<Value>,
    exclusive_minimum: Option<Value>,
    exclusive_maximum: Option<Value>,
    multiple_of: Option<Number>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    all_of: Vec<usize>,
    any_of: Vec<usize>,
    one_of: Vec<usize>,
    not: Option<usize>,
    reference: Option<usize>,
    /// Steps one application takes besides the application itself
    /// (`required`, `enum`, `const`).
    cost: usize,
}

/// A set of JSON Schema type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Types(u8);

const TYPE_NAMES: [&str; 7] = [
    "null", "boolean", "object", "array", "number", "string", "integer",
];

impl Types {
    fn parse(name: &str) -> Option<Types> {
        let bit = TYPE_NAMES.iter().position(|n| *n == name)?;
        Some(Types(1 << bit))
    }

    fn has(self, name: &str) -> bool {
        Types::parse(name).is_some_and(|t| self.0 & t.0 != 0)
    }

    fn matches(self, value: &Value) -> bool {
        match value {
            Value::Null => self.has("null"),
            Value::Bool(_) => self.has("boolean"),
            Value::Object(_) => self.has("object"),
            Value::Array(_) => self.has("array"),
            Value::String(_) => self.has("string"),
            Value::Number(n) => self.has("number") || (self.has("integer") && is_integer(n)),
        }
    }

    fn describe(self) -> String {
        let names: Vec<String> = TYPE_NAMES
            .iter()
            .filter(|n| self.has(n))
            .map(|n| format!("{n:?}"))
            .collect();
        if names.is_empty() {
            "none of the types".to_string()
        } else {
            format!("of type {}", names.join(" or "))
        }
    }
}

fn is_integer(n: &Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

impl Schema {
    /// Compiles a schema, refusing invalid schemas and keywords outside
    /// the supported subset with an error naming where and which.
    pub fn compile(schema: &Value) -> Result<Schema, Error> {
        let size = serde_json::to_vec(schema).map_or(usize::MAX, |v| v.len());
        if size > MAX_SCHEMA_BYTES {
            return Err(Error::invalid(format!(
                "a schema is at most {MAX_SCHEMA_BYTES} bytes of JSON; this one is {size}"
            )));
        }
        let mut compiler = Compiler {
            root: schema,
            nodes: Vec::new(),
            locations: Vec::new(),
            refs: HashMap::from([("#".to_string(), 0)]),
            pending: Vec::new(),
        };
        compiler.compile(schema, String::new(), 0)?;
        while let Some((index, reference)) = compiler.pending.pop() {
            let (target, at) = compiler.resolve(&reference)?;
            compiler.fill(index, target, at, 0)?;
        }
        compiler.refuse_loops()?;
        Ok(Schema {
            source: Arc::new(schema.clone()),
            nodes: compiler.nodes.into(),
        })
    }

    /// Checks a document, listing up to [`MAX_REPORTED`] violations with
    /// their JSON pointers.
    pub fn validate(&self, doc: &Value) -> Result<(), Error> {
        let mut sink = Sink {
            collect: true,
            errors: Vec::new(),
            more: false,
            steps: 0,
            exhausted: false,
            unique: HashMap::new(),
        };
        let ok = self.apply(0, doc, &mut String::new(), &mut sink, 0);
        if sink.exhausted {
            return Err(Error::invalid(format!(
                "the document could not be checked against the collection's schema within \
                 {MAX_STEPS} steps or {MAX_APPLY_DEPTH} nested subschemas; simplify the schema"
            )));
        }
        if ok {
            return Ok(());
        }
        let mut message = format!(
            "document does not match the collection's schema: {}",
            sink.errors.join("; ")
        );
        if sink.more {
            message.push_str("; and more");
        }
        Err(Error::invalid(message))
    }

    /// The schema as given.
    pub fn source(&self) -> &Value {
        &self.source
    }

    fn apply(
        &self,
        id: usize,
        value: &Value,
        path: &mut String,
        sink: &mut Sink,
        depth: usize,
    ) -> bool {
        let Some(node) = self.nodes.get(id) else {
            return false;
        };
        if depth > MAX_APPLY_DEPTH {
            sink.exhausted = true;
        }
        if !sink.spend(1 + node.cost) {
            return false;
        }
        let mut ok = true;
        // Records a violation; outside reporting (inside `anyOf`, …) the
        // first one settles the answer.
        macro_rules! fail {
            // A subschema failed and reported its own violations.
            (@nested) => {{
                ok = false;
                if !sink.collect || sink.more {
                    return false;
                }
            }};
            ($($arg:tt)*) => {{
                ok = false;
                if !sink.collect {
                    return false;
                }
                sink.report(path, format!($($arg)*));
                if sink.more {
                    return false;
                }
            }};
        }
        if node.never {
            fail!("no value is allowed here");
        }
        if let Some(types) = node.types
            && !types.matches(value)
        {
            fail!("{} is not {}", show(value), types.describe());
        }
        if let Some(values) = &node.enum_values
            && !values.iter().any(|v| same(v, value))
        {
            fail!(
                "{} is not one of {}",
                show(value),
                show(&Value::Array(values.clone()))
            );
        }
        if let Some(constant) = &node.constant
            && !same(constant, value)
        {
            fail!("{} is not {}", show(value), show(constant));
        }
        match value {
            Value::Object(map) => {
                let n = map.len() as u64;
                if let Some(min) = node.min_properties
                    && n < min
                {
                    fail!("{} has fewer than {} properties", show(value), min);
                }
                if let Some(max) = node.max_properties
                    && n > max
                {
                    fail!("{} has more than {} properties", show(value), max);
                }
                for name in &node.required {
                    if !map.contains_key(name) {
                        fail!("required property {name:?} is missing");
                    }
                }
                // A step per key, when there is something to look up.
                let keys = if node.properties.is_empty() && node.additional.is_none() {
                    0
                } else {
                    map.len()
                };
                if !sink.spend(keys) {
                    return false;
                }
                for (key, item) in map.iter().take(keys) {
                    let child = match node.properties.get(key) {
                        Some(&child) => child,
                        None => match node.additional {
                            Some(child) if self.nodes.get(child).is_some_and(|c| c.never) => {
                                fail!("property {key:?} is not allowed");
                                continue;
                            }
                            Some(child) => child,
                            None => continue,
                        },
                    };
                    if !self.descend(child, item, key, path, sink, depth) {
                        fail!(@nested);
                    }
                }
            }
            Value::Array(items) => {
                let n = items.len() as u64;
                if let Some(min) = node.min_items
                    && n < min
                {
                    fail!("{} has fewer than {} items", show(value), min);
                }
                if let Some(max) = node.max_items
                    && n > max
                {
                    fail!("{} has more than {} items", show(value), max);
                }
                // Sorted once per array, however many schemas ask.
                if node.unique_items
                    && !*sink
                        .unique
                        .entry(std::ptr::from_ref(value))
                        .or_insert_with(|| all_unique(items))
                {
                    fail!("{} has repeated items", show(value));
                }
                if let Some(child) = node.items {
                    for (i, item) in items.iter().enumerate() {
                        if !self.descend(child, item, &i.to_string(), path, sink, depth) {
                            fail!(@nested);
                        }
                    }
                }
            }
            Value::String(s) if node.min_length.is_some() || node.max_length.is_some() => {
                if !sink.spend(s.len() / 64) {
                    return false;
                }
                let n = s.chars().count() as u64;
                if let Some(min) = node.min_length
                    && n < min
                {
                    fail!("{} is shorter than {} characters", show(value), min);
                }
                if let Some(max) = node.max_length
                    && n > max
                {
                    fail!("{} is longer than {} characters", show(value), max);
                }
            }
            Value::Number(n) => {
                use std::cmp::Ordering::{Greater, Less};
                if let Some(min) = &node.minimum
                    && compare(value, min) == Less
                {
                    fail!("{} is less than the minimum of {}", show(value), show(min));
                }
                if let Some(max) = &node.maximum
                    && compare(value, max) == Greater
                {
                    fail!(
                        "{} is greater than the maximum of {}",
                        show(value),
                        show(max)
                    );
                }
                if let Some(min) = &node.exclusive_minimum
                    && compare(value, min) != Greater
                {
                    fail!(
                        "{} is not greater than the exclusive minimum of {}",
                        show(value),
                        show(min)
                    );
                }
                if let Some(max) = &node.exclusive_maximum
                    && compare(value, max) != Less
                {
                    fail!(
                        "{} is not less than the exclusive maximum of {}",
                        show(value),
                        show(max)
                    );
                }
                if let Some(m) = &node.multiple_of
                    && !is_multiple(n, m)
                {
                    fail!("{} is not a multiple of {m}", show(value));
                }
            }
            _ => {}
        }
        // In-place subschemas report their own violations.
        for &child in node.all_of.iter().chain(&node.reference) {
            if !self.apply(child, value, path, sink, depth + 1) {
                fail!(@nested);
            }
        }
        if !node.any_of.is_empty() {
            let matched = node
                .any_of
                .iter()
                .any(|&child| self.matches(child, value, path, sink, depth));
            if !matched {
                fail!("{} matches none of the anyOf schemas", show(value));
            }
        }
        if !node.one_of.is_empty() {
            let mut matched = 0;
            for &child in &node.one_of {
                if self.matches(child, value, path, sink, depth) {
                    matched += 1;
                    if matched > 1 {
                        break;
                    }
                }
            }
            if matched == 0 {
                fail!("{} matches none of the oneOf schemas", show(value));
            } else if matched > 1 {
                fail!("{} matches more than one of the oneOf schemas", show(value));
            }
        }
        if let Some(child) = node.not
            && self.matches(child, value, path, sink, depth)
        {
            fail!("{} must not match the \"not\" schema", show(value));
        }
        ok
    }

    /// Applies `child` to a member of the value, extending the path.
    fn descend(
        &self,
        child: usize,
        value: &Value,
        segment: &str,
        path: &mut String,
        sink: &mut Sink,
        depth: usize,
    ) -> bool {
        let len = path.len();
        path.push('/');
        path.push_str(&segment.replace('~', "~0").replace('/', "~1"));
        let ok = self.apply(child, value, path, sink, depth + 1);
        path.truncate(len);
        ok
    }

    /// Whether `child` holds, without reporting its violations.
    fn matches(
        &self,
        child: usize,
        value: &Value,
        path: &mut String,
        sink: &mut Sink,
        depth: usize,
    ) -> bool {
        let collect = std::mem::replace(&mut sink.collect, false);
        let ok = self.apply(child, value, path, sink, depth + 1);
        sink.collect = collect;
        ok
    }
}

struct Sink {
    /// Whether violations are listed (false inside `anyOf`, `oneOf`, `not`).
    collect: bool,
    errors: Vec<String>,
    /// More violations than [`MAX_REPORTED`].
    more: bool,
    steps: usize,
    exhausted: bool,
    /// Whether each array checked for `uniqueItems` has unique items.
    unique: HashMap<*const Value, bool>,
}

impl Sink {
    /// Counts `work` more steps; false once they run out.
    fn spend(&mut self, work: usize) -> bool {
        self.steps = self.steps.saturating_add(work);
        if self.steps > MAX_STEPS {
            self.exhausted = true;
        }
        !self.exhausted
    }

    fn report(&mut self, path: &str, message: String) {
        if self.errors.len() == MAX_REPORTED {
            self.more = true;
            return;
        }
        let at = if path.is_empty() { "(root)" } else { path };
        self.errors.push(format!("{at}: {message}"));
    }
}

/// A value for a message: compact JSON, cut short.
fn show(value: &Value) -> String {
    const MAX: usize = 60;
    let text = value.to_string();
    if text.len() <= MAX {
        return text;
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// [`equal`], in time bounded by the smaller value (objects and arrays of
/// different sizes differ at once), so an `enum` or `const` costs what it
/// holds, however large the document.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => equal(a, b),
    }
}

/// The steps comparing with `value` may take: one per value, plus one per
/// 64 bytes of strings and names.
fn size(value: &Value) -> usize {
    match value {
        Value::String(s) => 1 + s.len() / 64,
        Value::Array(items) => 1 + items.iter().map(size).sum::<usize>(),
        Value::Object(map) => {
            1 + map
                .iter()
                .map(|(k, v)| 1 + k.len() / 64 + size(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

fn all_unique(items: &[Value]) -> bool {
    // Equal values are adjacent once sorted in the total order.
    let mut sorted: Vec<&Value> = items.iter().collect();
    sorted.sort_by(|a, b| compare(a, b));
    sorted.windows(2).all(|w| !equal(w[0], w[1]))
}

/// A number as `digits × 10^exponent`, from its shortest decimal form
/// (so `0.3` is a multiple of `0.1`, as people mean). `None` past u128.
fn decimal(n: &Number) -> Option<(u128, i32)> {
    let text = n.to_string();
    let text = text.trim_start_matches('-');
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: u128 = 0;
    for c in whole.chars().chain(fraction.chars()) {
        digits = digits
            .checked_mul(10)?
            .checked_add(u128::from(c.to_digit(10)?))?;
    }
    let shift = i32::try_from(fraction.len()).ok()?;
    Some((digits, exponent.checked_sub(shift)?))
}

fn is_multiple(n: &Number, of: &Number) -> bool {
    let exact = || {
        let (nd, ne) = decimal(n)?;
        let (md, me) = decimal(of)?;
        if nd == 0 {
            return Some(true);
        }
        let e = ne.min(me);
        let scale = |d: u128, by: i32| d.checked_mul(10u128.checked_pow(u32::try_from(by).ok()?)?);
        let (ns, ms) = (scale(nd, ne - e)?, scale(md, me - e)?);
        (ms != 0).then(|| ns % ms == 0)
    };
    exact().unwrap_or_else(|| {
        // Far apart magnitudes: the quotient, as f64.
        let q = n.as_f64().unwrap_or(0.0) / of.as_f64().unwrap_or(1.0);
        q.is_finite() && q == q.trunc()
    })
}

struct Compiler<'a> {
    root: &'a Value,
    nodes: Vec<Node>,
    /// Each node's place in the schema, for errors.
    locations: Vec<String>,
    /// Node of each `$ref` seen (or `$defs` entry), compiled or pending.
    refs: HashMap<String, usize>,
    /// Nodes reserved for a `$ref`, still to compile.
    pending: Vec<(usize, String)>,
}

fn invalid(at: &str, message: impl std::fmt::Display) -> Error {
    let at = if at.is_empty() { "(root)" } else { at };
    Error::invalid(format!("invalid schema: {at}: {message}"))
}

fn pointer_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn count(at: &str, keyword: &str, value: &Value) -> Result<u64, Error> {
    let n = match value {
        Value::Number(n) if n.is_u64() => n.as_u64(),
        Value::Number(n) => n
            .as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < u64::MAX as f64)
            .map(|f| f as u64),
        _ => None,
    };
    n.ok_or_else(|| invalid(at, format!("{keyword:?} must be a non-negative integer")))
}

fn number(at: &str, keyword: &str, value: &Value) -> Result<Value, Error> {
    match value {
        Value::Number(_) => Ok(value.clone()),
        _ => Err(invalid(at, format!("{keyword:?} must be a number"))),
    }
}

impl<'a> Compiler<'a> {
    fn reserve(&mut self, at: String) -> usize {
        self.nodes.push(Node::default());
        self.locations.push(at);
        self.nodes.len() - 1
    }

    fn compile(&mut self, schema: &Value, at: String, depth: usize) -> Result<usize, Error> {
        let index = self.reserve(at.clone());
        self.fill(index, schema, at, depth)?;
        Ok(index)
    }

    /// Compiles `schema` (found at `at`) into the reserved node `index`.
    fn fill(
        &mut self,
        index: usize,
        schema: &Value,
        at: String,
        depth: usize,
    ) -> Result<(), Error> {
        if depth > MAX_SCHEMA_DEPTH {
            return Err(invalid(
                &at,
                format!("subschemas nest deeper than {MAX_SCHEMA_DEPTH}"),
            ));
        }
        if let Some(location) = self.locations.get_mut(index) {
            location.clone_from(&at);
        }
        let map = match schema {
            Value::Bool(allow) => {
                self.set(
                    index,
                    Node {
                        never: !allow,
                        ..Node::default()
                    },
                );
                return Ok(());
            }
            Value::Object(map) => map,
            _ => return Err(invalid(&at, "a schema is an object or a boolean")),
        };
        let mut node = Node::default();
        let sub = |keyword: &str| format!("{at}/{}", pointer_segment(keyword));
        for (keyword, value) in map {
            let here = sub(keyword);
            match keyword.as_str() {
                "type" => node.types = Some(parse_types(&at, value)?),
                "enum" => match value {
                    Value::Array(values) => node.enum_values = Some(values.clone()),
                    _ => return Err(invalid(&at, "\"enum\" must be an array")),
                },
                "const" => node.constant = Some(value.clone()),
                "properties" => {
                    let Value::Object(properties) = value else {
                        return Err(invalid(&at, "\"properties\" must be an object of schemas"));
                    };
                    for (name, schema) in properties {
                        let child = self.compile(
                            schema,
                            format!("{here}/{}", pointer_segment(name)),
                            depth + 1,
                        )?;
                        node.properties.insert(name.clone(), child);
                    }
                }
                "required" => node.required = parse_required(&at, value)?,
                "additionalProperties" => {
                    node.additional = Some(self.compile(value, here, depth + 1)?)
                }
                "minProperties" => node.min_properties = Some(count(&at, keyword, value)?),
                "maxProperties" => node.max_properties = Some(count(&at, keyword, value)?),
                "items" => {
                    if value.is_array() {
                        return Err(invalid(
                            &at,
                            "\"items\" is one schema for every item (the array form is from \
                             older drafts; prefixItems is not supported)",
                        ));
                    }
                    node.items = Some(self.compile(value, here, depth + 1)?);
                }
                "minItems" => node.min_items = Some(count(&at, keyword, value)?),
                "maxItems" => node.max_items = Some(count(&at, keyword, value)?),
                "uniqueItems" => match value {
                    Value::Bool(unique) => node.unique_items = *unique,
                    _ => return Err(invalid(&at, "\"uniqueItems\" must be a boolean")),
                },
                "minimum" => node.minimum = Some(number(&at, keyword, value)?),
                "maximum" => node.maximum = Some(number(&at, keyword, value)?),
                "exclusiveMinimum" => node.exclusive_minimum = Some(number(&at, keyword, value)?),
                "exclusiveMaximum" => node.exclusive_maximum = Some(number(&at, keyword, value)?),
                "multipleOf" => match value {
                    Value::Number(n) if n.as_f64().is_some_and(|f| f > 0.0) => {
                        node.multiple_of = Some(n.clone())
                    }
                    _ => return Err(invalid(&at, "\"multipleOf\" must be a number above 0")),
                },
                "minLength" => node.min_length = Some(count(&at, keyword, value)?),
                "maxLength" => node.max_length = Some(count(&at, keyword, value)?),
                "allOf" => node.all_of = self.compile_list(keyword, value, &at, depth)?,
                "anyOf" => node.any_of = self.compile_list(keyword, value, &at, depth)?,
                "oneOf" => node.one_of = self.compile_list(keyword, value, &at, depth)?,
                "not" => node.not = Some(self.compile(value, here, depth + 1)?),
                "$ref" => node.reference = Some(self.reference(&at, value)?),
                "$defs" => {
                    let Value::Object(defs) = value else {
                        return Err(invalid(&at, "\"$defs\" must be an object of schemas"));
                    };
                    for (name, schema) in defs {
                        // Compiled once, under the pointer a `$ref` uses.
                        let location = format!("{here}/{}", pointer_segment(name));
                        let key = format!("#{location}");
                        match self.refs.get(&key) {
                            Some(_) => {}
                            None => {
                                let child = self.compile(schema, location, depth + 1)?;
                                self.refs.insert(key, child);
                            }
                        }
                    }
                }
                "$schema" if at.is_empty() => {
                    let uri = value.as_str().unwrap_or_default();
                    if uri.trim_end_matches('#') != DRAFT {
                        return Err(invalid(
                            &at,
                            format!(
                                "only JSON Schema draft 2020-12 is supported ($schema {DRAFT:?})"
                            ),
                        ));
                    }
                }
                "$id" if at.is_empty() => {
                    if !value.is_string() {
                        return Err(invalid(&at, "\"$id\" must be a string"));
                    }
                }
                "$schema" | "$id" => {
                    return Err(invalid(
                        &at,
                        format!("{keyword:?} is allowed only at the root"),
                    ));
                }
                // Annotations: no effect on validation.
                "title" | "description" | "$comment" | "default" | "examples" | "deprecated"
                | "readOnly" | "writeOnly" => {}
                _ => {
                    return Err(invalid(
                        &at,
                        format!("unsupported keyword {keyword:?} (supported: {SUPPORTED})"),
                    ));
                }
            }
        }
        node.cost = node.required.len()
            + node
                .enum_values
                .iter()
                .flatten()
                .chain(&node.constant)
                .map(size)
                .sum::<usize>();
        self.set(index, node);
        Ok(())
    }

    fn set(&mut self, index: usize, node: Node) {
        if let Some(slot) = self.nodes.get_mut(index) {
            *slot = node;
        }
    }

    fn compile_list(
        &mut self,
        keyword: &str,
        value: &Value,
        at: &str,
        depth: usize,
    ) -> Result<Vec<usize>, Error> {
        let list = match value {
            Value::Array(list) if !list.is_empty() => list,
            _ => {
                return Err(invalid(
                    at,
                    format!("{keyword:?} must be a non-empty array of schemas"),
                ));
            }
        };
        list.iter()
            .enumerate()
            .map(|(i, schema)| self.compile(schema, format!("{at}/{keyword}/{i}"), depth + 1))
            .collect()
    }

    /// The node a `$ref` names: reserved now, compiled once.
    fn reference(&mut self, at: &str, value: &Value) -> Result<usize, Error> {
        let Some(reference) = value.as_str() else {
            return Err(invalid(at, "\"$ref\" must be a string"));
        };
        if reference != "#" && !reference.starts_with("#/") {
            return Err(invalid(
                at,
                format!(
                    "$ref {reference:?} is not supported: only local references such as \
                     \"#\" or \"#/$defs/name\" (nothing is fetched)"
                ),
            ));
        }
        let key = canonical(reference).ok_or_else(|| {
            invalid(
                at,
                format!("$ref {reference:?} is not a valid JSON pointer"),
            )
        })?;
        if let Some(&index) = self.refs.get(&key) {
            return Ok(index);
        }
        let index = self.reserve(key.clone());
        self.refs.insert(key.clone(), index);
        self.pending.push((index, key));
        Ok(index)
    }

    /// The subschema a canonical `#/…` pointer names, and its location.
    fn resolve(&self, key: &str) -> Result<(&'a Value, String), Error> {
        let pointer = key.trim_start_matches('#');
        let target = self
            .root
            .pointer(pointer)
            .ok_or_else(|| invalid("", format!("$ref {key:?} points at nothing in the schema")))?;
        Ok((target, pointer.to_string()))
    }

    /// Refuses `$ref` / `allOf` / … loops that apply schemas at the same
    /// place in the document forever.
    fn refuse_loops(&self) -> Result<(), Error> {
        let edges = |node: &Node| -> Vec<usize> {
            node.all_of
                .iter()
                .chain(&node.any_of)
                .chain(&node.one_of)
                .chain(&node.not)
                .chain(&node.reference)
                .copied()
                .collect()
        };
        // Iterative depth-first search: 0 unseen, 1 on the path, 2 done.
        let mut state = vec![0u8; self.nodes.len()];
        for start in 0..self.nodes.len() {
            if state[start] != 0 {
                continue;
            }
            let mut stack = vec![(start, edges(&self.nodes[start]), 0usize)];
            state[start] = 1;
            while let Some((node, next, i)) = stack.last_mut() {
                if let Some(&child) = next.get(*i) {
                    *i += 1;
                    match state.get(child) {
                        Some(0) => {
                            state[child] = 1;
                            let children = edges(&self.nodes[child]);
                            stack.push((child, children, 0));
                        }
                        Some(1) => {
                            let at = self.locations.get(*node).map_or("", String::as_str);
                            return Err(invalid(
                                at,
                                "$ref loops back to a schema applied at the same place in \
                                 the document (it would never end)",
                            ));
                        }
                        _ => {}
                    }
                } else {
                    state[*node] = 2;
                    stack.pop();
                }
            }
        }
        Ok(())
    }
}

/// A `#/…` reference as the JSON pointer it stands for (URI fragments
/// are percent-encoded), prefixed with `#`.
fn canonical(reference: &str) -> Option<String> {
    let fragment = reference.strip_prefix('#')?;
    let bytes = fragment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = fragment.get(i + 1..i + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    let pointer = String::from_utf8(decoded).ok()?;
    // `~` must start `~0` or `~1`.
    let mut chars = pointer.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return None;
        }
    }
    Some(format!("#{pointer}"))
}

fn parse_types(at: &str, value: &Value) -> Result<Types, Error> {
    let bad = || {
        invalid(
            at,
            format!(
                "\"type\" must be one of {} or an array of distinct ones",
                TYPE_NAMES.join(", ")
            ),
        )
    };
    let names: Vec<&Value> = match value {
        Value::Array(list) => list.iter().collect(),
        single => vec![single],
    };
    let mut types = Types(0);
    for name in names {
        let t = name.as_str().and_then(Types::parse).ok_or_else(bad)?;
        if types.0 & t.0 != 0 {
            return Err(bad());
        }
        types.0 |= t.0;
    }
    Ok(types)
}

fn parse_required(at: &str, value: &Value) -> Result<Vec<String>, Error> {
    let bad = || invalid(at, "\"required\" must be an array of distinct strings");
    let Value::Array(list) = value else {
        return Err(bad());
    };
    let mut names: Vec<String> = Vec::with_capacity(list.len());
    for name in list {
        let name = name.as_str().ok_or_else(bad)?;
        if names.iter().any(|n| n == name) {
            return Err(bad());
        }
        names.push(name.to_string());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema(value: Value) -> Schema {
        match Schema::compile(&value) {
            Ok(s) => s,
            Err(e) => panic!("{value} should compile: {e}"),
        }
    }

    fn refused(value: Value) -> String {
        match Schema::compile(&value) {
            Ok(_) => panic!("{value} should be refused"),
            Err(e) => {
                assert_eq!(e.code(), crate::error::ErrorCode::InvalidInput);
                e.to_string()
            }
        }
    }

    fn violations(s: &Schema, doc: Value) -> String {
        match s.validate(&doc) {
            Ok(()) => panic!("{doc} should not match {}", s.source()),
            Err(e) => {
                assert_eq!(e.code(), crate::error::ErrorCode::InvalidInput);
                e.to_string()
            }
        }
    }

    fn person() -> Schema {
        schema(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://example.com/person",
            "title": "A person",
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 3},
                "age": {"type": "integer", "minimum": 0, "exclusiveMaximum": 150},
                "email": {"type": ["string", "null"]},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true, "maxItems": 3},
                "address": {"$ref": "#/$defs/address"},
                "plan": {"enum": ["free", "pro"]},
                "kind": {"const": "person"},
                "score": {"multipleOf": 0.1, "maximum": 1}
            },
            "additionalProperties": false,
            "$defs": {
                "address": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                    "required": ["city"],
                    "minProperties": 1,
                    "maxProperties": 2
                }
            }
        }))
    }

    #[test]
    fn valid_documents_pass() {
        let s = person();
        for doc in [
            json!({"name": "Ann"}),
            json!({"name": "Bé😀", "age": 0, "email": null, "tags": [], "plan": "pro"}),
            json!({"name": "Bob", "age": 149.0, "email": "b@x", "tags": ["a", "b"], "kind": "person"}),
            json!({"name": "Cy", "address": {"city": "Oslo", "zip": "0150"}, "score": 0.3}),
        ] {
            assert!(s.validate(&doc).is_ok(), "{doc}: {:?}", s.validate(&doc));
        }
        assert!(schema(json!(true)).validate(&json!({"any": 1})).is_ok());
        assert!(schema(json!({})).validate(&json!({"any": 1})).is_ok());
        assert_eq!(s.source()["title"], json!("A person"));
    }

    #[test]
    fn violations_name_their_paths() {
        let s = person();
        let e = violations(&s, json!({"name": "Ann", "age": "x"}));
        assert_eq!(
            e,
            "document does not match the collection's schema: /age: \"x\" is not of type \"integer\""
        );
        let e = violations(&s, json!({"age": 1.5, "extra": 1}));
        assert!(
            e.contains("(root): required property \"name\" is missing"),
            "{e}"
        );
        assert!(e.contains("/age: 1.5 is not of type \"integer\""), "{e}");
        assert!(
            e.contains("(root): property \"extra\" is not allowed"),
            "{e}"
        );
        for (doc, expected) in [
            (
                json!({"name": ""}),
                "/name: \"\" is shorter than 1 characters",
            ),
            (
                json!({"name": "Anna"}),
                "/name: \"Anna\" is longer than 3 characters",
            ),
            (
                json!({"name": "A", "age": -1}),
                "/age: -1 is less than the minimum of 0",
            ),
            (
                json!({"name": "A", "age": 150}),
                "/age: 150 is not less than the exclusive maximum of 150",
            ),
            (
                json!({"name": "A", "email": 5}),
                "/email: 5 is not of type \"null\" or \"string\"",
            ),
            (
                json!({"name": "A", "tags": ["a", 1]}),
                "/tags/1: 1 is not of type \"string\"",
            ),
            (
                json!({"name": "A", "tags": ["a", "a"]}),
                "/tags: [\"a\",\"a\"] has repeated items",
            ),
            (
                json!({"name": "A", "tags": ["a", "b", "c", "d"]}),
                "has more than 3 items",
            ),
            (
                json!({"name": "A", "address": {"zip": "1"}}),
                "/address: required property \"city\" is missing",
            ),
            (
                json!({"name": "A", "address": {"city": 1}}),
                "/address/city: 1 is not of type \"string\"",
            ),
            (
                json!({"name": "A", "address": {}}),
                "/address: {} has fewer than 1 properties",
            ),
            (
                json!({"name": "A", "address": {"city": "a", "zip": "b", "x": 1}}),
                "has more than 2 properties",
            ),
            (
                json!({"name": "A", "plan": "gold"}),
                "/plan: \"gold\" is not one of [\"free\",\"pro\"]",
            ),
            (
                json!({"name": "A", "kind": "robot"}),
                "/kind: \"robot\" is not \"person\"",
            ),
            (
                json!({"name": "A", "score": 0.25}),
                "/score: 0.25 is not a multiple of 0.1",
            ),
            (
                json!({"name": "A", "score": 1.1}),
                "/score: 1.1 is greater than the maximum of 1",
            ),
            (json!([]), "(root): [] is not of type \"object\""),
        ] {
            let e = violations(&s, doc.clone());
            assert!(e.contains(expected), "{doc}: {e}");
        }
    }

    #[test]
    fn at_most_five_violations_are_listed() {
        let s = schema(json!({"items": {"type": "string"}}));
        let e = violations(&s, json!([1, 2, 3, 4, 5, 6, 7]));
        assert_eq!(e.matches(" is not of type ").count(), MAX_REPORTED, "{e}");
        assert!(e.contains("/4: 5 is not") && !e.contains("/5: "), "{e}");
        assert!(e.ends_with("; and more"), "{e}");
        // Pointer segments are escaped.
        let s = schema(json!({"additionalProperties": {"type": "integer"}}));
        let e = violations(&s, json!({"a/b~c": "x"}));
        assert!(e.contains("/a~1b~0c: \"x\""), "{e}");
    }

    #[test]
    fn combinators_and_recursive_refs() {
        let s = schema(json!({
            "anyOf": [{"type": "string"}, {"type": "integer", "minimum": 10}],
            "not": {"const": "forbidden"}
        }));
        assert!(s.validate(&json!("x")).is_ok());
        assert!(s.validate(&json!(12)).is_ok());
        let e = violations(&s, json!(3));
        assert!(
            e.contains("(root): 3 matches none of the anyOf schemas"),
            "{e}"
        );
        let e = violations(&s, json!("forbidden"));
        assert!(e.contains("must not match the \"not\" schema"), "{e}");

        let one = schema(json!({"oneOf": [{"type": "integer"}, {"minimum": 5}]}));
        assert!(one.validate(&json!(1)).is_ok());
        assert!(one.validate(&json!(5.5)).is_ok());
        assert!(violations(&one, json!(7)).contains("more than one of the oneOf"));
        assert!(violations(&one, json!(2.5)).contains("none of the oneOf"));

        let all = schema(json!({"allOf": [{"minimum": 1}, {"maximum": 3}]}));
        assert!(all.validate(&json!(2)).is_ok());
        assert!(violations(&all, json!(4)).contains("greater than the maximum of 3"));

        // A tree: each node's children are trees.
        let tree = schema(json!({
            "type": "object",
            "properties": {"value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#"}}},
            "required": ["value"]
        }));
        let doc = json!({"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]});
        assert!(tree.validate(&doc).is_ok());
        let e = violations(
            &tree,
            json!({"value": 1, "children": [{"value": 2, "children": [{"value": "x"}]}]}),
        );
        assert!(e.contains("/children/0/children/0/value: \"x\""), "{e}");

        let never = schema(json!({"properties": {"secret": false}}));
        assert!(
            violations(&never, json!({"secret": 1})).contains("/secret: no value is allowed here")
        );
        assert!(never.validate(&json!({"other": 1})).is_ok());
    }

    #[test]
    fn numbers_compare_exactly() {
        let s = schema(json!({"type": "integer", "maximum": 9007199254740992_u64}));
        assert!(s.validate(&json!(9007199254740992_u64)).is_ok());
        assert!(
            s.validate(&json!(9007199254740992.0)).is_ok(),
            "2.0-style floats are integers"
        );
        assert!(s.validate(&json!(9007199254740993_u64)).is_err());
        let m = schema(json!({"multipleOf": 3}));
        assert!(
            m.validate(&json!(u64::MAX)).is_ok(),
            "u64::MAX = 3 × 6148914691236517205"
        );
        assert!(m.validate(&json!(u64::MAX - 1)).is_err());
        assert!(m.validate(&json!(-9)).is_ok());
        assert!(m.validate(&json!(0)).is_ok());
        let small = schema(json!({"multipleOf": 0.01}));
        assert!(small.validate(&json!(19.99)).is_ok());
        assert!(small.validate(&json!(1e300)).is_ok());
        assert!(small.validate(&json!(0.001)).is_err());
        assert!(
            schema(json!({"enum": [1, [2.0]]}))
                .validate(&json!([2]))
                .is_ok()
        );
        assert!(
            schema(json!({"uniqueItems": true}))
                .validate(&json!([1, 1.0]))
                .is_err()
        );
    }

    #[test]
    fn invalid_and_unsupported_schemas_are_refused() {
        for (bad, expected) in [
            (json!(5), "a schema is an object or a boolean"),
            (json!({"type": "text"}), "\"type\" must be one of"),
            (
                json!({"type": ["string", "string"]}),
                "\"type\" must be one of",
            ),
            (
                json!({"minLength": -1}),
                "\"minLength\" must be a non-negative integer",
            ),
            (
                json!({"maxItems": 1.5}),
                "\"maxItems\" must be a non-negative integer",
            ),
            (
                json!({"multipleOf": 0}),
                "\"multipleOf\" must be a number above 0",
            ),
            (json!({"minimum": "1"}), "\"minimum\" must be a number"),
            (
                json!({"required": ["a", "a"]}),
                "\"required\" must be an array of distinct strings",
            ),
            (json!({"enum": "a"}), "\"enum\" must be an array"),
            (
                json!({"anyOf": []}),
                "\"anyOf\" must be a non-empty array of schemas",
            ),
            (
                json!({"items": [{"type": "string"}]}),
                "prefixItems is not supported",
            ),
            (
                json!({"properties": {"a": {"pattern": "^x"}}}),
                "invalid schema: /properties/a: unsupported keyword \"pattern\"",
            ),
            (json!({"format": "email"}), "unsupported keyword \"format\""),
            (json!({"if": {}, "then": {}}), "unsupported keyword \"if\""),
            (
                json!({"$defs": {"x": {"typo": 1}}}),
                "invalid schema: /$defs/x: unsupported keyword \"typo\"",
            ),
            (
                json!({"$schema": "http://json-schema.org/draft-07/schema#"}),
                "only JSON Schema draft 2020-12",
            ),
            (
                json!({"properties": {"a": {"$id": "x"}}}),
                "\"$id\" is allowed only at the root",
            ),
            (json!({"$ref": "#/$defs/missing"}), "points at nothing"),
            (json!({"$ref": "#/~2"}), "not a valid JSON pointer"),
            (json!({"$ref": "#anchor"}), "is not supported"),
            (
                json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}}}),
                "loops back",
            ),
            (json!({"anyOf": [{"$ref": "#"}]}), "loops back"),
        ] {
            let e = refused(bad.clone());
            assert!(e.contains(expected), "{bad}: {e}");
        }
        let big = json!({"enum": vec!["x".repeat(100); 700]});
        assert!(refused(big).contains("at most 65536 bytes"));
        let mut deep = json!({});
        for _ in 0..MAX_SCHEMA_DEPTH + 1 {
            deep = json!({"not": deep});
        }
        assert!(refused(deep).contains("nest deeper than"));
    }

    /// `d0` applies `d1` twice, and so on: `2^n` applications of `last`.
    fn doubling(n: usize, last: Value) -> Schema {
        let mut defs = serde_json::Map::new();
        for i in 0..n {
            let next = format!("#/$defs/d{}", i + 1);
            defs.insert(
                format!("d{i}"),
                json!({"allOf": [{"$ref": next}, {"$ref": next}]}),
            );
        }
        defs.insert(format!("d{n}"), last);
        schema(json!({"$defs": defs, "$ref": "#/$defs/d0"}))
    }

    /// Steps count the work that grows with the value, not only the
    /// applications: a 2 KB schema applying one subschema 2^20 times, each
    /// walking a large value, took minutes (found by fuzz/schema_validate's
    /// 10 s timeout, on an input written for it).
    #[test]
    fn steps_count_the_work_of_each_application() {
        let wide: serde_json::Map<String, Value> =
            (0..100).map(|i| (format!("k{i}"), json!(i))).collect();
        let list: Vec<u32> = (0..100).collect();
        for (last, doc) in [
            (json!({"properties": {"a": true}}), Value::Object(wide)),
            (json!({"maxLength": 20_000}), json!("x".repeat(10_000))),
            (json!({"enum": [list]}), json!(list)),
            (json!({"const": list}), json!(list)),
        ] {
            // Once is cheap; 2^14 times (about 65,000 applications with
            // the `$ref`s, well under MAX_STEPS) is over a million steps.
            assert!(schema(last.clone()).validate(&doc).is_ok(), "{last}");
            let e = violations(&doubling(14, last.clone()), doc);
            assert!(e.contains("could not be checked"), "{last}: {e}");
        }
        // uniqueItems sorts an array once, however many schemas ask.
        let items: Vec<u32> = (0..1000).collect();
        assert!(
            doubling(17, json!({"uniqueItems": true}))
                .validate(&json!(items))
                .is_ok()
        );
        // A large document with a plain schema still fits.
        let items: Vec<u32> = (0..100_000).collect();
        let s = schema(json!({"items": {"type": "integer"}, "uniqueItems": true}));
        assert!(s.validate(&json!(items)).is_ok());
        // An object bigger than an enum's is told apart at once (sorting
        // its keys for each comparison took seconds here).
        let big: serde_json::Map<String, Value> =
            (0..20_000).map(|i| (format!("k{i}"), json!(i))).collect();
        let s = doubling(14, json!({"not": {"enum": [{"k1": 1}]}}));
        assert!(s.validate(&Value::Object(big)).is_ok());
    }

    #[test]
    fn remote_refs_are_refused_not_fetched() {
        for remote in [
            "https://example.com/schema.json",
            "http://127.0.0.1:1/x#/a",
            "other.json#/$defs/a",
            "file:///etc/passwd",
        ] {
            let e = refused(json!({"properties": {"a": {"$ref": remote}}}));
            assert!(
                e.contains("/properties/a") && e.contains("only local references"),
                "{e}"
            );
        }
    }

    #[test]
    fn refs_resolve_escaped_pointers_and_costly_checks_stop() {
        let s = schema(json!({
            "$defs": {"a/b": {"type": "string"}, "c d": {"type": "integer"}},
            "properties": {"x": {"$ref": "#/$defs/a~1b"}, "y": {"$ref": "#/$defs/c%20d"}}
        }));
        assert!(s.validate(&json!({"x": "s", "y": 1})).is_ok());
        assert!(violations(&s, json!({"x": 1})).contains("/x: 1 is not of type \"string\""));
        assert!(violations(&s, json!({"y": "s"})).contains("/y: \"s\" is not of type \"integer\""));

        // Each level doubles the work: 2^40 applications are cut short.
        let mut defs = serde_json::Map::new();
        for i in 0..40 {
            defs.insert(
                format!("d{i}"),
                json!({"allOf": [{"$ref": format!("#/$defs/d{}", i + 1)}, {"$ref": format!("#/$defs/d{}", i + 1)}]}),
            );
        }
        defs.insert("d40".into(), json!({"type": "integer"}));
        let s = schema(json!({"$defs": defs, "$ref": "#/$defs/d0"}));
        let e = violations(&s, json!(1));
        assert!(e.contains("could not be checked"), "{e}");
    }
}
