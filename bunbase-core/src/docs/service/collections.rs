//! Collection definitions: create, update (building new indexes over the
//! stored documents), read, list, delete; and a project's usage.

use serde_json::Value;

use super::bundoc::Bundoc;
use super::commit::refusal_error;
use crate::auth::{Access, Principal};
use crate::docs::index;
use crate::docs::model::Collection;
use crate::docs::store::{Expect, IndexEntry, Refusal, Usage};
use crate::error::Error;
use crate::id::ProjectId;

impl Bundoc {
    pub async fn create_collection(
        &self,
        who: &Principal,
        project: &ProjectId,
        body: &Value,
    ) -> Result<Value, Error> {
        self.counted("create_collection", async {
            who.authorize(project, Access::Admin)?;
            let name = body
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::invalid("a collection needs a \"name\""))?;
            let collection = Collection::parse(name, body, 1)?;
            self.check_encryption(&collection)?;
            let existing = self.inner.store.collections(project).await?;
            if existing.len() >= self.inner.limits.max_collections {
                return Err(Error::QuotaExceeded(format!(
                    "a project has at most {} collections",
                    self.inner.limits.max_collections
                )));
            }
            self.inner
                .store
                .put_collection(
                    project,
                    name,
                    &collection.definition(),
                    Expect::Absent,
                    &[],
                    None,
                )
                .await
                .map_err(|r| match r {
                    Refusal::Changed { .. } => {
                        Error::AlreadyExists(format!("collection {name} exists"))
                    }
                    other => refusal_error(other),
                })?;
            self.forget_definition(project, name);
            Ok(collection.describe())
        })
        .await
    }

    /// Replaces a collection's indexes, schema, rules and scan policy
    /// (encrypted fields are fixed at creation). New indexes are built
    /// over the stored documents in the same transaction.
    pub async fn update_collection(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        body: &Value,
    ) -> Result<Value, Error> {
        self.counted("update_collection", async {
            who.authorize(project, Access::Admin)?;
            if body.get("name").is_some_and(|n| n != name) {
                return Err(Error::invalid("a collection can't be renamed"));
            }
            self.forget_definition(project, name);
            let old = self.definition(project, name).await?;
            let new = Collection::parse(name, body, old.version + 1)?;
            if new.encrypted != old.encrypted {
                return Err(Error::invalid(
                    "encrypted fields are fixed when a collection is created",
                ));
            }
            let dropped: Vec<String> = old
                .indexes
                .iter()
                .filter(|i| !new.indexes.contains(i))
                .map(|i| i.name.clone())
                .collect();
            let added: Vec<_> = new
                .indexes
                .iter()
                .filter(|i| !old.indexes.contains(i))
                .cloned()
                .collect();
            let build = |doc: &Value| -> Result<Vec<IndexEntry>, Error> {
                let mut out = Vec::new();
                for index in &added {
                    out.extend(index::index_entries(index, doc)?);
                }
                Ok(out)
            };
            self.inner
                .store
                .put_collection(
                    project,
                    name,
                    &new.definition(),
                    Expect::Version(old.version),
                    &dropped,
                    (!added.is_empty()).then_some(&build as _),
                )
                .await
                .map_err(|r| match r {
                    Refusal::Changed { .. } => Error::Conflict(format!(
                        "collection {name} changed meanwhile; read it and try again"
                    )),
                    Refusal::Duplicate { index } => Error::Conflict(format!(
                        "unique index {index} can't be built: two documents have the same value"
                    )),
                    other => refusal_error(other),
                })?;
            self.forget_definition(project, name);
            Ok(new.describe())
        })
        .await
    }

    pub async fn get_collection(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
    ) -> Result<Value, Error> {
        self.counted("get_collection", async {
            who.authorize(project, Access::Read)?;
            self.forget_definition(project, name);
            Ok(self.definition(project, name).await?.describe())
        })
        .await
    }

    pub async fn list_collections(
        &self,
        who: &Principal,
        project: &ProjectId,
    ) -> Result<Vec<Value>, Error> {
        self.counted("list_collections", async {
            who.authorize(project, Access::Read)?;
            self.inner
                .store
                .collections(project)
                .await?
                .into_iter()
                .map(|s| Collection::parse(&s.name, &s.definition, s.version).map(|c| c.describe()))
                .collect()
        })
        .await
    }

    pub async fn delete_collection(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
    ) -> Result<(), Error> {
        self.counted("delete_collection", async {
            who.authorize(project, Access::Admin)?;
            let deleted = self.inner.store.delete_collection(project, name).await?;
            self.forget_definition(project, name);
            if !deleted {
                return Err(Error::NotFound(format!(
                    "no collection {name} in project {project}"
                )));
            }
            Ok(())
        })
        .await
    }

    pub async fn usage(&self, who: &Principal, project: &ProjectId) -> Result<Usage, Error> {
        self.counted("usage", async {
            who.authorize(project, Access::Read)?;
            self.inner.store.usage(project).await
        })
        .await
    }
}

#[async_trait::async_trait]
impl crate::platform::ProjectData for Bundoc {
    fn service(&self) -> &'static str {
        "bundoc"
    }

    /// Deletes every collection of the project with its documents and
    /// indexes.
    async fn purge_project(&self, project: &ProjectId) -> Result<u64, Error> {
        let mut removed = 0;
        for collection in self.inner.store.collections(project).await? {
            if self
                .inner
                .store
                .delete_collection(project, &collection.name)
                .await?
            {
                removed += 1;
            }
            self.forget_definition(project, &collection.name);
        }
        Ok(removed)
    }
}
