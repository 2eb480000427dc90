//! Who may do what: data rights bypass rules; end users and publishable
//! keys are checked against the collection's rules.

use serde_json::{Map, Value, json};

use super::bundoc::Bundoc;
use crate::auth::{Access, Principal, PrincipalKind};
use crate::docs::model::{Collection, Operation};
use crate::docs::rules::Context;
use crate::error::Error;
use crate::id::ProjectId;

/// Who is calling, as far as rules go.
pub(crate) enum Caller {
    /// Holds the data right the operation needs: rules don't apply.
    Trusted,
    /// An end user or a publishable key: the collection's rules decide.
    Ruled { auth: Value },
}

impl Caller {
    pub(crate) fn is_ruled(&self) -> bool {
        matches!(self, Caller::Ruled { .. })
    }
}

impl Bundoc {
    /// Whether `who` may act on `project`'s documents with `access`, and
    /// whether rules apply.
    pub(crate) fn caller(
        &self,
        who: &Principal,
        project: &ProjectId,
        access: Access,
    ) -> Result<Caller, Error> {
        let ruled = matches!(
            who.kind,
            PrincipalKind::EndUser | PrincipalKind::PublishableKey
        );
        if ruled && &who.project == project && !who.rights.allows(access) {
            let mut auth = Map::new();
            auth.insert("kind".into(), json!(who.kind.as_str()));
            if who.kind == PrincipalKind::EndUser {
                auth.insert("uid".into(), json!(who.subject));
            }
            return Ok(Caller::Ruled {
                auth: Value::Object(auth),
            });
        }
        who.authorize(project, access)?;
        Ok(Caller::Trusted)
    }

    pub(crate) fn allowed(
        caller: &Caller,
        collection: &Collection,
        op: Operation,
        resource: &Value,
        request: &Value,
    ) -> bool {
        match caller {
            Caller::Trusted => true,
            Caller::Ruled { auth } => collection.rule(op).is_some_and(|rule| {
                rule.expr.allows(&Context {
                    auth,
                    resource,
                    request,
                })
            }),
        }
    }

    pub(super) fn check_rule(
        caller: &Caller,
        collection: &Collection,
        op: Operation,
        resource: &Value,
        request: &Value,
    ) -> Result<(), Error> {
        if Self::allowed(caller, collection, op, resource, request) {
            return Ok(());
        }
        Err(Error::PermissionDenied(match collection.rule(op) {
            None => format!(
                "{} on {} is closed to end users: the collection has no {} rule",
                op.as_str(),
                collection.name,
                op.as_str()
            ),
            Some(rule) => format!(
                "the {} rule of {} denies this: {}",
                op.as_str(),
                collection.name,
                rule.source
            ),
        }))
    }
}
