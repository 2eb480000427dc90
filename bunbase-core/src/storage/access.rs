//! Who may do what to a bucket's objects. Credentials with the right
//! (secret keys, accounts, services) may; end users and publishable keys
//! only as the bucket's rules allow; anyone may read a public bucket; a
//! signed URL grants exactly what it names.

use serde_json::{Map, Value, json};

use super::model::{Bucket, ObjectInfo};
use super::signed::SignedGrant;
use crate::auth::{Access, Principal, PrincipalKind};
use crate::docs::rules::{Context, Expr};
use crate::error::Error;
use crate::id::ProjectId;

/// The party to an operation.
#[derive(Clone, Copy)]
pub enum Actor<'a> {
    Principal(&'a Principal),
    /// No credential: public buckets' objects only.
    Anonymous,
    /// A signed URL, verified.
    Signed(&'a SignedGrant),
}

/// The three things rules decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleOp {
    Read,
    Write,
    Delete,
}

impl RuleOp {
    fn as_str(self) -> &'static str {
        match self {
            RuleOp::Read => "read",
            RuleOp::Write => "write",
            RuleOp::Delete => "delete",
        }
    }

    pub(crate) fn access(self) -> Access {
        match self {
            RuleOp::Read => Access::Read,
            RuleOp::Write | RuleOp::Delete => Access::Write,
        }
    }
}

/// An actor resolved for one project.
pub(crate) enum Gate {
    /// Holds the right: rules don't apply.
    Trusted { owner: Option<String> },
    /// An end user or publishable key: the bucket's rules decide.
    Ruled {
        auth: Value,
        owner: Option<String>,
        /// The bucket's rules, parsed once for every object the request
        /// touches (a listing evaluates them per row).
        rules: Box<ParsedRules>,
    },
    /// Reads of a public bucket.
    Public,
    /// A signed URL: its grant was checked against the operation.
    Signed,
}

/// A bucket's rules, parsed: read, write, delete. A rule that does not
/// parse (none do: they are checked when set) denies, as a missing one.
pub(crate) struct ParsedRules([Option<Expr>; 3]);

impl ParsedRules {
    fn of(bucket: &Bucket) -> ParsedRules {
        let parse = |op| rule(bucket, op).and_then(|source| Expr::parse(source).ok());
        ParsedRules([
            parse(RuleOp::Read),
            parse(RuleOp::Write),
            parse(RuleOp::Delete),
        ])
    }

    fn get(&self, op: RuleOp) -> Option<&Expr> {
        self.0[op as usize].as_ref()
    }
}

impl Gate {
    /// Who the stored object will name as its owner.
    pub(crate) fn owner(&self) -> Option<String> {
        match self {
            Gate::Trusted { owner } | Gate::Ruled { owner, .. } => owner.clone(),
            Gate::Public | Gate::Signed => None,
        }
    }

    pub(crate) fn is_ruled(&self) -> bool {
        matches!(self, Gate::Ruled { .. })
    }
}

/// The gate of `actor` for `op` on objects of `project`'s `bucket`.
pub(crate) fn gate(
    actor: Actor<'_>,
    project: &ProjectId,
    bucket: &Bucket,
    op: RuleOp,
) -> Result<Gate, Error> {
    match actor {
        Actor::Principal(who) => {
            let ruled = matches!(
                who.kind,
                PrincipalKind::EndUser | PrincipalKind::PublishableKey
            );
            let owner = Some(who.subject.clone());
            if ruled && &who.project == project && !who.rights.allows(op.access()) {
                let mut auth = Map::new();
                auth.insert("kind".into(), json!(who.kind.as_str()));
                if who.kind == PrincipalKind::EndUser {
                    auth.insert("uid".into(), json!(who.subject));
                }
                return Ok(Gate::Ruled {
                    auth: Value::Object(auth),
                    owner,
                    rules: Box::new(ParsedRules::of(bucket)),
                });
            }
            // Another project's credential is refused even for a public
            // bucket: public reads are for requests without one.
            who.authorize(project, op.access())?;
            Ok(Gate::Trusted { owner })
        }
        Actor::Anonymous if op == RuleOp::Read && bucket.settings.public => Ok(Gate::Public),
        Actor::Anonymous => Err(Error::Unauthenticated(
            "missing credential: send Authorization: Bearer <token>".into(),
        )),
        Actor::Signed(grant) => {
            grant.permits(project, &bucket.name, op)?;
            Ok(Gate::Signed)
        }
    }
}

/// What rules see of an object at `key` (stored, or being written).
pub(crate) fn rule_object(bucket: &str, key: &str, info: Option<&ObjectInfo>) -> Value {
    let segments: Vec<&str> = key.split('/').collect();
    let mut value = json!({
        "bucket": bucket,
        "key": key,
        "path": segments,
        "name": segments.last().copied().unwrap_or(""),
    });
    if let (Some(info), Value::Object(map)) = (info, &mut value) {
        map.insert("size".into(), json!(info.size));
        map.insert("content_type".into(), json!(info.content_type));
        map.insert("owner".into(), json!(info.owner));
        map.insert("metadata".into(), json!(info.metadata));
        map.insert("last_modified".into(), json!(info.last_modified));
    }
    value
}

/// Parses a bucket's rules, so a broken one is refused when set.
pub(crate) fn validate_rules(bucket: &Bucket) -> Result<(), Error> {
    let rules = &bucket.settings.rules;
    for (op, source) in [
        ("read", &rules.read),
        ("write", &rules.write),
        ("delete", &rules.delete),
    ] {
        if let Some(source) = source {
            Expr::parse(source).map_err(|e| Error::invalid(format!("the {op} rule: {e}")))?;
        }
    }
    Ok(())
}

/// Whether the gate allows `op` on an object (`resource`: the stored one,
/// `null` if none; `request`: the one being written, `null` otherwise).
pub(crate) fn allowed(
    gate: &Gate,
    bucket: &Bucket,
    op: RuleOp,
    resource: &Value,
    request: &Value,
) -> bool {
    match gate {
        Gate::Trusted { .. } | Gate::Signed => true,
        Gate::Public => op == RuleOp::Read,
        // A public bucket's objects are readable by anyone, rules or not.
        Gate::Ruled { .. } if op == RuleOp::Read && bucket.settings.public => true,
        Gate::Ruled { auth, rules, .. } => rules.get(op).is_some_and(|expr| {
            expr.allows(&Context {
                auth,
                resource,
                request,
            })
        }),
    }
}

fn rule(bucket: &Bucket, op: RuleOp) -> Option<&String> {
    let rules = &bucket.settings.rules;
    match op {
        RuleOp::Read => rules.read.as_ref(),
        RuleOp::Write => rules.write.as_ref(),
        RuleOp::Delete => rules.delete.as_ref(),
    }
}

/// As [`allowed`], with the refusal explained. A ruled read of a missing
/// object answers `not_found` like a hidden one, so rules never reveal
/// which keys exist.
pub(crate) fn check(
    gate: &Gate,
    bucket: &Bucket,
    op: RuleOp,
    resource: &Value,
    request: &Value,
) -> Result<(), Error> {
    if allowed(gate, bucket, op, resource, request) {
        return Ok(());
    }
    Err(Error::PermissionDenied(match rule(bucket, op) {
        None => format!(
            "{} in bucket {} is closed to end users and publishable keys: it has no {} rule",
            op.as_str(),
            bucket.name,
            op.as_str()
        ),
        Some(source) => format!(
            "the {} rule of bucket {} denies this: {source}",
            op.as_str(),
            bucket.name
        ),
    }))
}
