//! Access rules: one expression per collection and operation, over `auth`
//! (the end user: `auth.uid`, `auth.kind`, …), `resource` (the stored
//! document) and `request` (the incoming one), e.g.
//!
//! ```text
//! resource.owner == auth.uid
//! request.status in ["draft", "submitted"] && auth.uid != null
//! !(resource.locked == true) || auth.kind == "end_user"
//! ```
//!
//! Grammar (precedence low → high): `||`, `&&`, `!`, comparisons
//! (`== != < <= > >= in startsWith`), values: literals (`null true false`, numbers,
//! `"strings"`, `[lists]`), paths (`auth.uid`, `resource.items.0.sku`) and
//! parentheses. Comparisons use the total order of [`super::order`]
//! (ordering operators only between values of one type). A missing path
//! under `resource` or `request` equals `null`, but two missing paths are
//! never equal. A missing path under `auth` (`auth.uid` of a publishable
//! key) is an error, whatever the other side holds: the comparison is
//! neither true nor false, so `!`, `&&` and `||` over it deny unless the
//! other side decides (`x || true` allows, as in Firestore); without it,
//! `resource.owner == auth.uid` would let an anonymous caller read every
//! document whose owner is `null` or missing. Ordering and `in` with a
//! missing path are false. An expression that is not a boolean denies.
//! Evaluation never fails and never loops: rules are parsed once, with
//! bounded size.

use serde_json::Value;

use super::order::{compare, equal};
use crate::error::Error;

/// Longest rule, in bytes.
pub const MAX_LEN: usize = 4096;
/// Deepest nesting.
pub const MAX_DEPTH: usize = 32;

/// The roots a rule may read.
const ROOTS: [&str; 3] = ["auth", "resource", "request"];

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    List(Vec<Expr>),
    Path(Vec<String>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(Op, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    /// `a startsWith b`: both strings, `a` begins with `b`.
    StartsWith,
}

/// What a rule can see.
pub struct Context<'a> {
    pub auth: &'a Value,
    pub resource: &'a Value,
    pub request: &'a Value,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(Value),
    Sym(&'static str),
}

fn tokenize(src: &str) -> Result<Vec<Token>, Error> {
    let bad = |msg: String| Error::invalid(format!("rule: {msg}"));
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '.'))
            {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
            continue;
        }
        if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_digit() || matches!(chars[i], '.' | 'e' | 'E'))
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let number: Value = serde_json::from_str(&text)
                .map_err(|_| bad(format!("{text:?} is not a number")))?;
            out.push(Token::Num(number));
            continue;
        }
        if c == '"' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(bad("a string is not closed".into())),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        match chars.get(i + 1) {
                            Some('"') => text.push('"'),
                            Some('\\') => text.push('\\'),
                            Some('n') => text.push('\n'),
                            _ => return Err(bad("unknown escape in a string".into())),
                        }
                        i += 2;
                    }
                    Some(other) => {
                        text.push(*other);
                        i += 1;
                    }
                }
            }
            out.push(Token::Str(text));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let sym = match two.as_str() {
            "==" => Some("=="),
            "!=" => Some("!="),
            "<=" => Some("<="),
            ">=" => Some(">="),
            "&&" => Some("&&"),
            "||" => Some("||"),
            _ => None,
        };
        if let Some(sym) = sym {
            out.push(Token::Sym(sym));
            i += 2;
            continue;
        }
        let one = match c {
            '<' => "<",
            '>' => ">",
            '!' => "!",
            '(' => "(",
            ')' => ")",
            '[' => "[",
            ']' => "]",
            ',' => ",",
            other => return Err(bad(format!("unexpected character {other:?}"))),
        };
        out.push(Token::Sym(one));
        i += 1;
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, sym: &str) -> bool {
        if self.peek()
            == Some(&Token::Sym(match sym {
                "||" => "||",
                "&&" => "&&",
                "!" => "!",
                "(" => "(",
                ")" => ")",
                "[" => "[",
                "]" => "]",
                "," => ",",
                _ => return false,
            }))
        {
            self.at += 1;
            return true;
        }
        false
    }

    fn expect(&mut self, sym: &str) -> Result<(), Error> {
        if self.eat(sym) {
            Ok(())
        } else {
            Err(Error::invalid(format!("rule: expected {sym}")))
        }
    }

    fn or(&mut self, depth: usize) -> Result<Expr, Error> {
        let mut left = self.and(depth)?;
        while self.eat("||") {
            left = Expr::Or(Box::new(left), Box::new(self.and(depth)?));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, Error> {
        let mut left = self.not(depth)?;
        while self.eat("&&") {
            left = Expr::And(Box::new(left), Box::new(self.not(depth)?));
        }
        Ok(left)
    }

    fn not(&mut self, depth: usize) -> Result<Expr, Error> {
        if depth > MAX_DEPTH {
            return Err(Error::invalid(format!(
                "rule: nested deeper than {MAX_DEPTH}"
            )));
        }
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.not(depth + 1)?)));
        }
        self.comparison(depth)
    }

    fn comparison(&mut self, depth: usize) -> Result<Expr, Error> {
        let left = self.value(depth)?;
        let op = match self.peek() {
            Some(Token::Sym("==")) => Op::Eq,
            Some(Token::Sym("!=")) => Op::Ne,
            Some(Token::Sym("<")) => Op::Lt,
            Some(Token::Sym("<=")) => Op::Le,
            Some(Token::Sym(">")) => Op::Gt,
            Some(Token::Sym(">=")) => Op::Ge,
            Some(Token::Ident(word)) if word == "in" => Op::In,
            Some(Token::Ident(word)) if word == "startsWith" => Op::StartsWith,
            _ => return Ok(left),
        };
        self.at += 1;
        let right = self.value(depth)?;
        Ok(Expr::Compare(op, Box::new(left), Box::new(right)))
    }

    fn value(&mut self, depth: usize) -> Result<Expr, Error> {
        let token = self
            .tokens
            .get(self.at)
            .cloned()
            .ok_or_else(|| Error::invalid("rule: ends where a value was expected"))?;
        self.at += 1;
        match token {
            Token::Num(n) => Ok(Expr::Literal(n)),
            Token::Str(s) => Ok(Expr::Literal(Value::String(s))),
            Token::Sym("(") => {
                if depth > MAX_DEPTH {
                    return Err(Error::invalid(format!(
                        "rule: nested deeper than {MAX_DEPTH}"
                    )));
                }
                let inner = self.or(depth + 1)?;
                self.expect(")")?;
                Ok(inner)
            }
            Token::Sym("[") => {
                if depth > MAX_DEPTH {
                    return Err(Error::invalid(format!(
                        "rule: nested deeper than {MAX_DEPTH}"
                    )));
                }
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.value(depth + 1)?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Ok(Expr::List(items))
            }
            Token::Ident(word) => match word.as_str() {
                "null" => Ok(Expr::Literal(Value::Null)),
                "true" => Ok(Expr::Literal(Value::Bool(true))),
                "false" => Ok(Expr::Literal(Value::Bool(false))),
                path => {
                    let segments: Vec<String> = path.split('.').map(str::to_string).collect();
                    if !ROOTS.contains(&segments[0].as_str())
                        || segments.iter().any(String::is_empty)
                    {
                        return Err(Error::invalid(format!(
                            "rule: {path:?} is not a path under auth, resource or request"
                        )));
                    }
                    Ok(Expr::Path(segments))
                }
            },
            Token::Sym(other) => Err(Error::invalid(format!("rule: unexpected {other}"))),
        }
    }
}

impl Expr {
    pub fn parse(src: &str) -> Result<Expr, Error> {
        if src.len() > MAX_LEN {
            return Err(Error::invalid(format!("rules are at most {MAX_LEN} bytes")));
        }
        let mut parser = Parser {
            tokens: tokenize(src)?,
            at: 0,
        };
        if parser.tokens.is_empty() {
            return Err(Error::invalid("rule: empty"));
        }
        let expr = parser.or(0)?;
        if parser.at != parser.tokens.len() {
            return Err(Error::invalid("rule: unexpected text after the expression"));
        }
        Ok(expr)
    }

    /// Every path the rule reads (`["resource", "owner"]`).
    pub fn paths(&self) -> Vec<&[String]> {
        match self {
            Expr::Literal(_) => Vec::new(),
            Expr::Path(segments) => vec![segments.as_slice()],
            Expr::List(items) => items.iter().flat_map(Expr::paths).collect(),
            Expr::Not(inner) => inner.paths(),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Compare(_, a, b) => {
                let mut out = a.paths();
                out.extend(b.paths());
                out
            }
        }
    }

    /// Whether the rule allows: only a `true` result does.
    pub fn allows(&self, ctx: &Context<'_>) -> bool {
        self.eval(ctx) == Value::Bool(true)
    }

    /// A path that leads nowhere (`None`), or the value.
    fn operand(&self, ctx: &Context<'_>) -> Option<Value> {
        match self {
            Expr::Path(segments) => {
                let root = match segments[0].as_str() {
                    "auth" => ctx.auth,
                    "resource" => ctx.resource,
                    _ => ctx.request,
                };
                let mut at = root;
                for segment in &segments[1..] {
                    at = match at {
                        Value::Object(map) => map.get(segment)?,
                        Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                        _ => return None,
                    };
                }
                Some(at.clone())
            }
            other => Some(other.eval(ctx)),
        }
    }

    /// Whether this operand reads a path under `auth` that the caller does
    /// not have (directly, or in a list).
    fn misses_auth(&self, ctx: &Context<'_>) -> bool {
        match self {
            Expr::Path(segments) => segments[0] == "auth" && self.operand(ctx).is_none(),
            Expr::List(items) => items.iter().any(|item| item.misses_auth(ctx)),
            _ => false,
        }
    }

    fn eval(&self, ctx: &Context<'_>) -> Value {
        match self {
            Expr::Literal(v) => v.clone(),
            Expr::List(items) => Value::Array(items.iter().map(|e| e.eval(ctx)).collect()),
            Expr::Path(_) => self.operand(ctx).unwrap_or(Value::Null),
            Expr::Not(inner) => match inner.eval(ctx) {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            },
            // Three-valued: an error (not a boolean) decides nothing.
            Expr::And(a, b) => match (a.eval(ctx), b.eval(ctx)) {
                (Value::Bool(false), _) | (_, Value::Bool(false)) => Value::Bool(false),
                (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
                _ => Value::Null,
            },
            Expr::Or(a, b) => match (a.eval(ctx), b.eval(ctx)) {
                (Value::Bool(true), _) | (_, Value::Bool(true)) => Value::Bool(true),
                (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
                _ => Value::Null,
            },
            Expr::Compare(_, a, b) if a.misses_auth(ctx) || b.misses_auth(ctx) => Value::Null,
            Expr::Compare(op, a, b) => {
                let (x, y) = match (a.operand(ctx), b.operand(ctx)) {
                    // Two missing paths prove nothing: deny.
                    (None, None) => return Value::Bool(false),
                    (Some(x), Some(y)) => (x, y),
                    // One missing: it equals null, and orders with nothing.
                    (x, y) if matches!(op, Op::Eq | Op::Ne) => {
                        (x.unwrap_or(Value::Null), y.unwrap_or(Value::Null))
                    }
                    _ => return Value::Bool(false),
                };
                let same = std::mem::discriminant(&x) == std::mem::discriminant(&y);
                Value::Bool(match op {
                    Op::Eq => equal(&x, &y),
                    Op::Ne => !equal(&x, &y),
                    Op::Lt => same && compare(&x, &y).is_lt(),
                    Op::Le => same && compare(&x, &y).is_le(),
                    Op::Gt => same && compare(&x, &y).is_gt(),
                    Op::Ge => same && compare(&x, &y).is_ge(),
                    Op::In => match &y {
                        Value::Array(items) => items.iter().any(|i| equal(i, &x)),
                        _ => false,
                    },
                    Op::StartsWith => match (&x, &y) {
                        (Value::String(a), Value::String(b)) => a.starts_with(b.as_str()),
                        _ => false,
                    },
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn allows(rule: &str, auth: Value, resource: Value, request: Value) -> bool {
        Expr::parse(rule)
            .unwrap_or_else(|e| panic!("{rule}: {e}"))
            .allows(&Context {
                auth: &auth,
                resource: &resource,
                request: &request,
            })
    }

    #[test]
    fn starts_with_compares_string_prefixes_only() {
        let me = json!({"uid": "u1"});
        let object = json!({"key": "users/u1/avatar.png", "path": ["users", "u1", "avatar.png"]});
        assert!(allows(
            "resource.key startsWith \"users/\"",
            me.clone(),
            object.clone(),
            json!(null)
        ));
        assert!(!allows(
            "resource.key startsWith \"public/\"",
            me.clone(),
            object.clone(),
            json!(null)
        ));
        assert!(allows(
            "resource.path.1 == auth.uid",
            me.clone(),
            object.clone(),
            json!(null)
        ));
        assert!(!allows(
            "resource.size startsWith \"1\"",
            me.clone(),
            json!({"size": 12}),
            json!(null)
        ));
        assert!(!allows(
            "resource.missing startsWith \"\"",
            me.clone(),
            object,
            json!(null)
        ));
        assert!(Expr::parse("resource.key startsWith").is_err());
    }

    #[test]
    fn owners_statuses_and_logic() {
        let me = json!({"uid": "u1", "kind": "end_user"});
        let mine = json!({"owner": "u1", "locked": false, "n": 5});
        let theirs = json!({"owner": "u2"});
        assert!(allows(
            "resource.owner == auth.uid",
            me.clone(),
            mine.clone(),
            json!(null)
        ));
        assert!(!allows(
            "resource.owner == auth.uid",
            me.clone(),
            theirs.clone(),
            json!(null)
        ));
        assert!(allows(
            "request.status in [\"draft\", \"submitted\"] && auth.uid != null",
            me.clone(),
            json!(null),
            json!({"status": "draft"})
        ));
        assert!(!allows(
            "request.status in [\"draft\"]",
            me.clone(),
            json!(null),
            json!({"status": "x"})
        ));
        assert!(allows(
            "!(resource.locked == true) || auth.kind == \"service\"",
            me.clone(),
            mine.clone(),
            json!(null)
        ));
        assert!(allows(
            "resource.n >= 5 && resource.n < 6",
            me.clone(),
            mine.clone(),
            json!(null)
        ));
        assert!(
            !allows("resource.n > \"a\"", me.clone(), mine.clone(), json!(null)),
            "no cross-type order"
        );
        assert!(allows(
            "resource.missing == null",
            me.clone(),
            mine.clone(),
            json!(null)
        ));
        assert!(
            !allows("auth.uid", me.clone(), mine.clone(), json!(null)),
            "not a boolean denies"
        );
        // Anonymous caller, document without an owner: two missing paths
        // are not equal (else this rule would open every unowned document).
        let none = || (json!(null), json!({}), json!(null));
        let (a, r, q) = none();
        assert!(!allows("resource.owner == auth.uid", a, r, q));
        let (a, r, q) = none();
        assert!(!allows("resource.owner != auth.uid", a, r, q));
        let (a, r, q) = none();
        assert!(!allows("auth.uid in [null]", a, r, q));
    }

    /// A path the caller lacks under `auth` decides nothing, whatever the
    /// other side holds, and negating it does not allow.
    #[test]
    fn a_missing_auth_path_denies() {
        let key = || json!({"kind": "publishable_key"});
        let owned_by_null = json!({"owner": null, "public": true});
        for rule in [
            "resource.owner == auth.uid",
            "request.owner == auth.uid",
            "auth.uid == null",
            "auth.uid != \"u1\"",
            "!(auth.uid == \"u1\")",
            "resource.owner in [auth.uid]",
            "auth.uid == resource.owner && true",
            "!(auth.uid == resource.owner || false)",
            "auth.org.id == resource.org",
        ] {
            assert!(
                !allows(rule, key(), owned_by_null.clone(), json!({"owner": null})),
                "{rule}"
            );
        }
        // The other side of || still decides, as in Firestore.
        assert!(allows(
            "auth.uid == resource.owner || resource.public == true",
            key(),
            owned_by_null.clone(),
            json!(null)
        ));
        assert!(allows(
            "auth.kind == \"publishable_key\"",
            key(),
            json!(null),
            json!(null)
        ));
        // A signed-in end user with a uid is compared as before.
        let user = json!({"kind": "end_user", "uid": "u1"});
        assert!(allows(
            "auth.uid != null",
            user.clone(),
            json!(null),
            json!(null)
        ));
        assert!(allows(
            "!(auth.uid == resource.owner)",
            user,
            owned_by_null,
            json!(null)
        ));
    }

    #[test]
    fn bad_rules_are_refused() {
        for (rule, expected) in [
            ("", "empty"),
            ("owner == auth.uid", "not a path under"),
            ("resource.a ==", "ends where a value"),
            ("(resource.a == 1", "expected )"),
            ("resource.a == 1 1", "unexpected text"),
            ("resource.a = 1", "unexpected character"),
            ("\"open", "not closed"),
            ("resource..a == 1", "not a path under"),
        ] {
            let err = Expr::parse(rule).unwrap_err();
            assert!(err.to_string().contains(expected), "{rule}: {err}");
        }
        assert!(Expr::parse(&"(".repeat(40)).is_err());
        assert!(Expr::parse(&"!".repeat(40)).is_err());
        assert!(Expr::parse(&"x".repeat(MAX_LEN + 1)).is_err());
    }

    /// Lists nest like parentheses. `[[[…` the whole length of a rule used
    /// to recurse once per bracket and overflow a 2 MiB stack in a debug
    /// build (found writing fuzz/rules_expr's depth check).
    #[test]
    fn nested_lists_are_bounded() {
        let nested = |n| format!("resource.a in {}1{}", "[".repeat(n), "]".repeat(n));
        assert!(Expr::parse(&nested(MAX_DEPTH + 1)).is_ok());
        let err = Expr::parse(&nested(MAX_DEPTH + 2)).unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
        let deep = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| Expr::parse(&"[".repeat(MAX_LEN)).is_err())
            .unwrap();
        assert!(deep.join().unwrap());
    }
}
