//! Bundoc (`/bundoc`): documents in collections, queries, realtime.
//!
//! ```no_run
//! # async fn demo() -> Result<(), bunbase_core::Error> {
//! use futures_util::StreamExt;
//! use serde_json::json;
//! let client = bunbase_client::Client::new("http://127.0.0.1:8080")?
//!     .with_token("bb_dev_…")
//!     .with_project("demo");
//! let orders = client.docs("orders");
//! orders.create(&json!({"city": "Oslo", "total": 40})).await?;
//! let page = orders.find(json!({"city": "Oslo"})).desc("total").limit(20).page().await?;
//! let mut live = orders.find(json!({"city": "Oslo"})).watch().await?;
//! while let Some(frame) = live.next().await { println!("{:?}", frame?); }
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bunbase_core::Error;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::sse::SseParser;
use crate::transport::{Client, EventBody, segment, transport};

/// Collections of a project: create, read, update, delete definitions.
pub struct CollectionsClient {
    client: Client,
    project: String,
}

/// One collection's documents.
#[derive(Clone)]
pub struct DocsCollection {
    client: Client,
    project: Option<String>,
    name: String,
}

/// A page of documents: pass `next_cursor` to [`Find::after`] for the
/// next one (`None` at the end). The type the server answers with.
pub use bunbase_core::docs::Page as DocPage;
/// Documents and bytes a project stores.
pub use bunbase_core::docs::Usage as DocsUsage;

fn project_url(client: &Client, project: &str) -> String {
    client.url(&format!("/bundoc/v1/projects/{}", segment(project)))
}

impl Client {
    /// Bundoc (`/bundoc`): a collection of the project set with
    /// [`Client::with_project`].
    pub fn docs(&self, collection: &str) -> DocsCollection {
        DocsCollection::new(self.clone(), self.project.clone(), collection)
    }

    /// Bundoc: a collection of `project`.
    pub fn docs_in(&self, project: &str, collection: &str) -> DocsCollection {
        DocsCollection::new(self.clone(), Some(project.to_string()), collection)
    }

    /// Bundoc: `project`'s collection definitions.
    pub fn collections(&self, project: &str) -> CollectionsClient {
        CollectionsClient::new(self.clone(), project)
    }
}

impl CollectionsClient {
    pub(crate) fn new(client: Client, project: &str) -> CollectionsClient {
        CollectionsClient {
            client,
            project: project.to_string(),
        }
    }

    fn url(&self, tail: &str) -> String {
        format!(
            "{}/collections{tail}",
            project_url(&self.client, &self.project)
        )
    }

    /// Creates a collection: `{"name", "indexes"?, "schema"?, "rules"?,
    /// "encrypted"?, "allow_scans"?}`; its description.
    pub async fn create(&self, definition: &Value) -> Result<Value, Error> {
        let request = self.client.http.post(self.url("")).json(definition);
        self.client.send_json(request).await
    }

    pub async fn get(&self, name: &str) -> Result<Value, Error> {
        let url = self.url(&format!("/{}", segment(name)));
        self.client.send_json(self.client.http.get(url)).await
    }

    pub async fn list(&self) -> Result<Vec<Value>, Error> {
        #[derive(Deserialize)]
        struct Listed {
            collections: Vec<Value>,
        }
        let listed: Listed = self
            .client
            .send_json(self.client.http.get(self.url("")))
            .await?;
        Ok(listed.collections)
    }

    /// Replaces indexes, schema, rules and scan policy.
    pub async fn update(&self, name: &str, definition: &Value) -> Result<Value, Error> {
        let url = self.url(&format!("/{}", segment(name)));
        self.client
            .send_json(self.client.http.put(url).json(definition))
            .await
    }

    /// Deletes a collection and its documents.
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        let url = self.url(&format!("/{}", segment(name)));
        let _: Value = self.client.send_json(self.client.http.delete(url)).await?;
        Ok(())
    }

    pub async fn usage(&self) -> Result<DocsUsage, Error> {
        let url = format!("{}/usage", project_url(&self.client, &self.project));
        self.client.send_json(self.client.http.get(url)).await
    }
}

impl DocsCollection {
    pub(crate) fn new(client: Client, project: Option<String>, name: &str) -> DocsCollection {
        DocsCollection {
            client,
            project,
            name: name.to_string(),
        }
    }

    fn url(&self, tail: &str) -> Result<String, Error> {
        let project = self.project.as_deref().ok_or_else(|| {
            Error::invalid("no project: use Client::with_project or Client::docs_in")
        })?;
        Ok(format!(
            "{}/collections/{}{tail}",
            project_url(&self.client, project),
            segment(&self.name)
        ))
    }

    fn doc_url(&self, id: &str) -> Result<String, Error> {
        self.url(&format!("/documents/{}", segment(id)))
    }

    /// Creates a document (its `_id` is generated unless given); the
    /// stored document with its system fields.
    pub async fn create(&self, doc: &Value) -> Result<Value, Error> {
        let request = self.client.http.post(self.url("/documents")?).json(doc);
        self.client.send_json(request).await
    }

    /// The document, or `None` if there is none with that id.
    pub async fn get(&self, id: &str) -> Result<Option<Value>, Error> {
        match self
            .client
            .send_json(self.client.http.get(self.doc_url(id)?))
            .await
        {
            Ok(doc) => Ok(Some(doc)),
            Err(Error::NotFound(message)) if message.contains("no document") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the document (or creates it with that id).
    pub async fn replace(&self, id: &str, doc: &Value) -> Result<Value, Error> {
        self.replace_at(id, doc, None).await
    }

    /// Replaces the document only if it is at `version` (`conflict`
    /// otherwise).
    pub async fn replace_if(&self, id: &str, doc: &Value, version: u64) -> Result<Value, Error> {
        self.replace_at(id, doc, Some(version)).await
    }

    async fn replace_at(
        &self,
        id: &str,
        doc: &Value,
        version: Option<u64>,
    ) -> Result<Value, Error> {
        let request = if_match(self.client.http.put(self.doc_url(id)?).json(doc), version);
        self.client.send_json(request).await
    }

    /// Applies a JSON Merge Patch (`null` removes a field).
    pub async fn patch(&self, id: &str, patch: &Value) -> Result<Value, Error> {
        self.patch_at(id, patch, None).await
    }

    pub async fn patch_if(&self, id: &str, patch: &Value, version: u64) -> Result<Value, Error> {
        self.patch_at(id, patch, Some(version)).await
    }

    async fn patch_at(
        &self,
        id: &str,
        patch: &Value,
        version: Option<u64>,
    ) -> Result<Value, Error> {
        let request = self
            .client
            .http
            .patch(self.doc_url(id)?)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/merge-patch+json",
            )
            .body(patch.to_string());
        self.client.send_json(if_match(request, version)).await
    }

    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        self.delete_at(id, None).await
    }

    pub async fn delete_if(&self, id: &str, version: u64) -> Result<(), Error> {
        self.delete_at(id, Some(version)).await
    }

    async fn delete_at(&self, id: &str, version: Option<u64>) -> Result<(), Error> {
        let request = if_match(self.client.http.delete(self.doc_url(id)?), version);
        let _: Value = self.client.send_json(request).await?;
        Ok(())
    }

    /// Applies every write or none: `{"op": "create", "doc"}`,
    /// `{"op": "replace"|"patch", "id", "doc"|"patch", "if_version"?}`,
    /// `{"op": "delete", "id"}`. The new documents (`null` for deletes).
    pub async fn batch(&self, writes: &[Value]) -> Result<Vec<Value>, Error> {
        #[derive(Deserialize)]
        struct Results {
            results: Vec<Value>,
        }
        let request = self
            .client
            .http
            .post(self.url("/batch")?)
            .json(&json!({ "writes": writes }));
        let results: Results = self.client.send_json(request).await?;
        Ok(results.results)
    }

    /// A query on this collection: add sort, limit, fields, then run it.
    pub fn find(&self, filter: Value) -> Find {
        let mut body = Map::new();
        body.insert("filter".into(), filter);
        Find {
            collection: self.clone(),
            body,
        }
    }

    /// One page of a query given as the API's JSON body (`{"filter",
    /// "sort", "limit", "cursor", "fields"}`), sent as it is: for callers
    /// that already hold such a body (a function's `docs.query`).
    pub async fn query(&self, body: &Value) -> Result<DocPage, Error> {
        let request = self.client.http.post(self.url("/query")?).json(body);
        self.client.send_json(request).await
    }
}

fn if_match(request: reqwest::RequestBuilder, version: Option<u64>) -> reqwest::RequestBuilder {
    match version {
        Some(v) => request.header(reqwest::header::IF_MATCH, format!("\"{v}\"")),
        None => request,
    }
}

/// A query being built; nothing is sent until `page`, `all`, `count`,
/// `explain` or `watch`.
#[derive(Clone)]
pub struct Find {
    collection: DocsCollection,
    body: Map<String, Value>,
}

impl Find {
    fn sorted(mut self, field: &str, direction: &str) -> Find {
        let sort = self.body.entry("sort").or_insert_with(|| json!([]));
        if let Value::Array(items) = sort {
            items.push(json!({ field: direction }));
        }
        self
    }

    /// Sorts by `field` ascending (after any earlier sort fields).
    pub fn asc(self, field: &str) -> Find {
        self.sorted(field, "asc")
    }

    pub fn desc(self, field: &str) -> Find {
        self.sorted(field, "desc")
    }

    /// Documents per page (1–1000; 20 by default).
    pub fn limit(mut self, limit: usize) -> Find {
        self.body.insert("limit".into(), json!(limit));
        self
    }

    /// Only these fields (plus the system fields).
    pub fn fields(mut self, fields: &[&str]) -> Find {
        self.body.insert("fields".into(), json!(fields));
        self
    }

    /// Continues after a page's `next_cursor`.
    pub fn after(mut self, cursor: &str) -> Find {
        self.body.insert("cursor".into(), json!(cursor));
        self
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        route: &str,
        body: Value,
    ) -> Result<T, Error> {
        let request = self
            .collection
            .client
            .http
            .post(self.collection.url(route)?)
            .json(&body);
        self.collection.client.send_json(request).await
    }

    /// One page.
    pub async fn page(&self) -> Result<DocPage, Error> {
        self.post("/query", Value::Object(self.body.clone())).await
    }

    /// Every matching document (following the cursors).
    pub async fn all(&self) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        let mut find = self.clone();
        loop {
            let page = find.page().await?;
            out.extend(page.documents);
            match page.next_cursor {
                Some(cursor) => find = find.after(&cursor),
                None => return Ok(out),
            }
        }
    }

    /// How many documents match the filter.
    pub async fn count(&self) -> Result<u64, Error> {
        #[derive(Deserialize)]
        struct Count {
            count: u64,
        }
        let filter = self.body.get("filter").cloned().unwrap_or(json!({}));
        let count: Count = self.post("/count", json!({ "filter": filter })).await?;
        Ok(count.count)
    }

    /// How the query runs: plan, index, documents examined.
    pub async fn explain(&self) -> Result<Value, Error> {
        self.post("/explain", Value::Object(self.body.clone()))
            .await
    }

    /// The matching documents now, then every change to that set, as
    /// they commit; reconnects and resumes by itself.
    pub async fn watch(&self) -> Result<DocWatch, Error> {
        let mut url = self.collection.url("/subscribe")?;
        let mut params = Vec::new();
        if let Some(filter) = self.body.get("filter") {
            params.push(format!("filter={}", segment(&filter.to_string())));
        }
        if let Some(Value::Array(items)) = self.body.get("sort") {
            let sort: Vec<String> = items
                .iter()
                .filter_map(|item| {
                    item.as_object()?
                        .iter()
                        .next()
                        .map(|(f, d)| (f.clone(), d.clone()))
                })
                .map(|(field, dir)| {
                    if dir == "desc" {
                        format!("-{field}")
                    } else {
                        field
                    }
                })
                .collect();
            params.push(format!("sort={}", segment(&sort.join(","))));
        }
        if let Some(Value::Array(fields)) = self.body.get("fields") {
            let fields: Vec<&str> = fields.iter().filter_map(Value::as_str).collect();
            params.push(format!("fields={}", segment(&fields.join(","))));
        }
        if !params.is_empty() {
            url.push('?');
            url.push_str(&params.join("&"));
        }
        let mut watch = WatchState {
            client: self.collection.client.clone(),
            url,
            position: None,
            body: None,
            parser: SseParser::new(),
            pending: VecDeque::new(),
            backoff: INITIAL_BACKOFF,
            done: false,
        };
        watch.body = Some(watch.client.open_stream(&watch.url, None).await?);
        // The snapshot comes first: wait for it so errors show here.
        while watch.pending.is_empty() {
            let Some(body) = watch.body.as_mut() else {
                return Err(Error::unavailable(
                    "subscription closed before its snapshot",
                ));
            };
            match tokio::time::timeout(OPENING_TIMEOUT, body.next()).await {
                Ok(Some(Ok(chunk))) => watch.absorb(&chunk),
                Ok(Some(Err(e))) => return Err(transport(e)),
                Ok(None) | Err(_) => {
                    return Err(Error::unavailable(
                        "subscription closed before its snapshot",
                    ));
                }
            }
        }
        Ok(DocWatch {
            inner: Box::pin(futures_util::stream::unfold(
                watch,
                |mut state| async move {
                    let item = state.next_frame().await?;
                    Some((item, state))
                },
            )),
        })
    }
}

/// One frame of a realtime query.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchFrame {
    /// Every matching document: replace what you hold.
    Snapshot(Vec<Value>),
    Added(Value),
    /// Upsert (after a reconnect, missed changes come as `Changed`).
    Changed(Value),
    /// Remove it if you hold it.
    Removed(String),
}

const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
const OPENING_TIMEOUT: Duration = Duration::from_secs(30);

type Body = EventBody;

/// A realtime query's frames; drop it to unsubscribe.
pub struct DocWatch {
    inner: Pin<Box<dyn Stream<Item = Result<WatchFrame, Error>> + Send>>,
}

struct WatchState {
    client: Client,
    url: String,
    position: Option<u64>,
    body: Option<Body>,
    parser: SseParser,
    pending: VecDeque<Result<WatchFrame, Error>>,
    backoff: Duration,
    done: bool,
}

impl WatchState {
    fn absorb(&mut self, chunk: &[u8]) {
        for frame in self.parser.feed(chunk) {
            let data: Value = serde_json::from_str(&frame.data).unwrap_or(Value::Null);
            if let Some(id) = frame.id.as_deref().and_then(|id| id.parse::<u64>().ok()) {
                self.position = Some(id);
            }
            let item = match frame.event.as_str() {
                "snapshot" => {
                    let docs = data["documents"].as_array().cloned().unwrap_or_default();
                    WatchFrame::Snapshot(docs)
                }
                "added" => WatchFrame::Added(data["doc"].clone()),
                "changed" => WatchFrame::Changed(data["doc"].clone()),
                "removed" => WatchFrame::Removed(data["id"].as_str().unwrap_or_default().into()),
                "closed" => {
                    tracing::debug!(reason = %data["reason"], "server ended the subscription; resuming");
                    self.body = None;
                    continue;
                }
                _ => continue,
            };
            self.backoff = INITIAL_BACKOFF;
            self.pending.push_back(Ok(item));
        }
    }

    async fn next_frame(&mut self) -> Option<Result<WatchFrame, Error>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            let Some(body) = self.body.as_mut() else {
                tokio::time::sleep(self.backoff).await;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                match self.client.open_stream(&self.url, self.position).await {
                    Ok(body) => {
                        self.body = Some(body);
                        self.parser = SseParser::new();
                    }
                    Err(e) if !e.code().retryable() => {
                        self.done = true;
                        return Some(Err(e));
                    }
                    Err(e) => tracing::debug!(error = %e, "resubscribing failed; retrying"),
                }
                continue;
            };
            match body.next().await {
                Some(Ok(chunk)) => self.absorb(&chunk),
                Some(Err(_)) | None => self.body = None,
            }
        }
    }
}

impl Stream for DocWatch {
    type Item = Result<WatchFrame, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}
