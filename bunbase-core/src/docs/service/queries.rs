//! Reads: one document by id, queries (a page under the list rule),
//! explain and count, all planned over the collection's indexes.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::access::Caller;
use super::bundoc::Bundoc;
use crate::auth::{Access, Principal};
use crate::docs::document::check_id;
use crate::docs::model::{Collection, Operation};
use crate::docs::plan::{Run, Stats};
use crate::docs::query::{Page, Query};
use crate::error::Error;
use crate::id::ProjectId;

impl Bundoc {
    pub async fn get(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        id: &str,
    ) -> Result<Value, Error> {
        self.counted("get", async {
            let caller = self.caller(who, project, Access::Read)?;
            let collection = self.definition(project, collection).await?;
            check_id(&json!(id))?;
            let stored = self.inner.store.get(project, &collection.name, id).await?;
            let resource = stored.as_ref().unwrap_or(&Value::Null);
            Self::check_rule(
                &caller,
                &collection,
                Operation::Read,
                resource,
                &Value::Null,
            )?;
            let mut doc = stored.ok_or_else(|| {
                Error::NotFound(format!("no document {id} in {}", collection.name))
            })?;
            self.open(project, &collection, &mut doc).await?;
            Ok(doc)
        })
        .await
    }

    pub(crate) fn parse_query(collection: &Collection, body: &Value) -> Result<Query, Error> {
        let query = Query::parse(body)?;
        let sorted = query.sort.iter().map(|(p, _)| p);
        if let Some(path) = query
            .filter
            .paths()
            .into_iter()
            .chain(sorted)
            .find(|p| collection.is_encrypted(p))
        {
            return Err(Error::invalid(format!(
                "{} is encrypted: it can't be filtered or sorted on",
                path.as_string()
            )));
        }
        Ok(query)
    }

    /// The caller, the collection and the query `body` asks for on it.
    pub(crate) async fn read_query(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        body: &Value,
    ) -> Result<(Caller, Arc<Collection>, Query), Error> {
        let caller = self.caller(who, project, Access::Read)?;
        let collection = self.definition(project, collection).await?;
        let query = Self::parse_query(&collection, body)?;
        Ok((caller, collection, query))
    }

    /// A page of the documents matching a query that the caller's list
    /// rule allows.
    pub async fn query(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        body: &Value,
    ) -> Result<Page, Error> {
        self.counted("query", async {
            let (caller, collection, query) =
                self.read_query(who, project, collection, body).await?;
            let (mut page, _) = self.run(&caller, project, &collection, &query).await?;
            for doc in &mut page.documents {
                self.open(project, &collection, doc).await?;
            }
            Ok(page)
        })
        .await
    }

    /// How a query runs: the plan and what it read (it is run).
    pub async fn explain(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        body: &Value,
    ) -> Result<Stats, Error> {
        self.counted("explain", async {
            let (caller, collection, query) =
                self.read_query(who, project, collection, body).await?;
            // What a plan examines counts what rules hide.
            if caller.is_ruled() {
                return Err(Error::PermissionDenied(
                    "explain is for the project's members and secret keys: its figures count documents rules hide".into(),
                ));
            }
            Ok(self.run(&caller, project, &collection, &query).await?.1)
        })
        .await
    }

    /// How many documents match a filter (that the caller's list rule
    /// allows).
    pub async fn count(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        filter: &Value,
    ) -> Result<usize, Error> {
        self.counted("count", async {
            let body = json!({ "filter": filter });
            let (caller, collection, query) =
                self.read_query(who, project, collection, &body).await?;
            let allowed = Self::list_rule(&caller, &collection);
            let run = Run {
                ruled: caller.is_ruled(),
                ..self.plan(project, &collection, &query, &allowed)
            };
            run.count().await
        })
        .await
    }

    pub(crate) async fn run(
        &self,
        caller: &Caller,
        project: &ProjectId,
        collection: &Collection,
        query: &Query,
    ) -> Result<(Page, Stats), Error> {
        let started = Instant::now();
        let allowed = Self::list_rule(caller, collection);
        let (page, stats) = self
            .plan(project, collection, query, &allowed)
            .page()
            .await?;
        let metrics = &self.inner.metrics;
        metrics
            .query_seconds
            .with_label_values(&[stats.plan])
            .observe(started.elapsed().as_secs_f64());
        metrics.documents_examined.observe(stats.examined as f64);
        Ok((page, stats))
    }

    /// What the caller's list rule lets it see.
    fn list_rule<'a>(
        caller: &'a Caller,
        collection: &'a Collection,
    ) -> impl Fn(&Value) -> bool + Sync + 'a {
        move |doc| Self::allowed(caller, collection, Operation::List, doc, &Value::Null)
    }

    /// The run of `query` over what `allowed` lets through.
    fn plan<'a>(
        &'a self,
        project: &'a ProjectId,
        collection: &'a Collection,
        query: &'a Query,
        allowed: &'a (dyn Fn(&Value) -> bool + Sync),
    ) -> Run<'a> {
        Run {
            store: self.inner.store.as_ref(),
            project,
            collection,
            query,
            max_scan: self.inner.limits.max_scan,
            allowed,
            ruled: false,
        }
    }
}
