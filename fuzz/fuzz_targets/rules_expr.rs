//! Why: a collection's access rules are text a project admin sends over
//! HTTP; `Expr::parse` must refuse bad text with `InvalidInput` (never
//! panic, never recurse without bound), and a parsed rule is then evaluated
//! on every ruled request, where it must never panic and must answer the
//! same way every time.
//!
//! Input layout: the rule's source text (invalid UTF-8 is replaced, as
//! `String::from_utf8_lossy` does). A parsed rule is evaluated against
//! every pair of the fixed `auth` values (an end user, a publishable key
//! without `uid`) and `resource` / `request` documents below.
#![no_main]

use bunbase_core::ErrorCode;
use bunbase_core::docs::rules::{Context, Expr, MAX_DEPTH};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

/// The deepest chain of nested `!` and `[…]` along one branch of the tree
/// (parentheses leave no node; `&&`, `||` and comparisons are built by
/// loops and do not nest the parser).
fn nesting(expr: &Expr) -> usize {
    match expr {
        Expr::Literal(_) | Expr::Path(_) => 0,
        Expr::Not(inner) => 1 + nesting(inner),
        Expr::List(items) => 1 + items.iter().map(nesting).max().unwrap_or(0),
        Expr::And(a, b) | Expr::Or(a, b) | Expr::Compare(_, a, b) => nesting(a).max(nesting(b)),
    }
}

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let expr = match Expr::parse(&src) {
        Ok(expr) => expr,
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::InvalidInput, "{src:?}: {e}");
            return;
        }
    };
    assert_eq!(
        Expr::parse(&src).ok().as_ref(),
        Some(&expr),
        "parsing is deterministic"
    );
    // Every level the parser descends is counted against MAX_DEPTH (from
    // depth 0 to MAX_DEPTH inclusive).
    assert!(
        nesting(&expr) <= MAX_DEPTH + 1,
        "nested {} deep: {src:?}",
        nesting(&expr)
    );
    for path in expr.paths() {
        assert!(
            ["auth", "resource", "request"].contains(&path[0].as_str()),
            "{path:?}"
        );
        assert!(path.iter().all(|s| !s.is_empty()), "{path:?}");
    }

    let auths = [
        json!({"kind": "end_user", "uid": "u1"}),
        json!({"kind": "publishable_key"}),
    ];
    let documents = [
        Value::Null,
        json!({
            "_id": "d1", "owner": "u1", "status": "draft", "n": 5, "f": 1.5,
            "big": 18446744073709551615_u64, "neg": -3, "locked": false, "none": null,
            "tags": ["a", "b", 1], "items": [{"sku": "x", "n": 1}, {"sku": "y"}],
            "nested": {"a": {"b": [true, null]}}, "empty": {}, "list": []
        }),
        json!({"owner": null, "status": "submitted", "n": 5.0, "tags": "a", "0": [0]}),
    ];
    let not = Expr::Not(Box::new(expr.clone()));
    for auth in &auths {
        for resource in &documents {
            for request in &documents {
                let ctx = Context {
                    auth,
                    resource,
                    request,
                };
                let allows = expr.allows(&ctx);
                assert_eq!(allows, expr.allows(&ctx), "evaluation is deterministic");
                // Three-valued logic: a rule and its negation never both allow.
                assert!(
                    !(allows && not.allows(&ctx)),
                    "{src:?} and its negation both allow"
                );
            }
        }
    }
});
