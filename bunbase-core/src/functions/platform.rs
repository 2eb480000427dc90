//! What a function's code may call: `ctx.bunbase.docs.get(…)` and the
//! rest arrive here as a method name and a JSON object of arguments, and
//! go to the services exactly as the REST shells send them, acting as the
//! function's own credential. The project is always that credential's, and
//! every service authorizes the call as it would any other: a function can
//! never reach another project.
//!
//! Answers have the JSON shapes the REST API gives (documents, query
//! pages, object descriptions, signed URLs); a missing document, key or
//! object is `null` (but a missing collection or bucket is `not_found`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Map, Value, json};

use crate::auth::Principal;
use crate::docs::Bundoc;
use crate::error::Error;
use crate::events::Events;
use crate::kms::Kms;
use crate::kv::{Kv, PutRequest};
use crate::storage::{
    Actor, ByteStream, Fetched, GetObject, ObjectPath, PutCondition, PutObject, SignRequest,
    SignedMethod, Storage,
};

/// Largest object `storage.get` reads into a function's memory (larger
/// ones are for a signed URL).
pub const MAX_STORAGE_READ: u64 = 10 * 1024 * 1024;

/// What a function's code may call, acting as `who` (the function's own
/// credential: kind SecretKey, rights read+write, its project, subject
/// `function:{name}`).
#[async_trait]
pub trait Platform: Send + Sync + 'static {
    async fn call(&self, who: &Principal, method: &str, args: Value) -> Result<Value, Error>;
    /// The named BunKMS secrets' values (`not_found` naming the first
    /// missing one).
    async fn secrets(
        &self,
        who: &Principal,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, Error>;
}

/// The services of this process, each optional (the all-in-one may run a
/// subset): a call to a missing one is `unavailable`.
#[derive(Clone, Default)]
pub struct LocalPlatform {
    pub docs: Option<Bundoc>,
    pub kv: Option<Kv>,
    pub events: Option<Events>,
    pub storage: Option<Storage>,
    pub kms: Option<Kms>,
}

/// One method per binding, each given its checked arguments: what a
/// [`Platform`] implements so that [`dispatch`] routes its calls.
#[async_trait]
pub trait BindingCalls: Send + Sync {
    async fn docs_get(&self, who: &Principal, args: Args<'_>) -> Result<Value, Error>;
    async fn docs_query(&self, who: &Principal, args: Args<'_>) -> Result<Value, Error>;
    async fn docs_create(&self, who: &Principal, args: Args<'_>) -> Result<Value, Error>;
    async fn docs_update(&self, who: &Principal, args: Args<'_>) -> Result<Value, Error>;
    async fn docs_delete(&self, who: &Principal, args: Args<'_>) -> Result<Value, Error>;
    async fn kv_get(&self, who: &Principal, args: Args<'_>) -> Result<Value, Error>;
    async fn kv_set(&self, who: &Principal, args: Args<'_>) -> Result<Value, Error>;
    async fn kv_incr(&self, who: &Principal, args: Args<'_>) -> Result<Value, Error>;
    async fn kv_delete(&self, who: &Principal, args: Args<'_>) -> Result<Value, Error>;
    async fn events_publish(&self, who: &Principal, args: Args<'_>) -> Result<Value, Error>;
    async fn storage_get(&self, who: &Principal, args: Args<'_>) -> Result<Value, Error>;
    async fn storage_put(&self, who: &Principal, args: Args<'_>) -> Result<Value, Error>;
    async fn storage_sign(&self, who: &Principal, args: Args<'_>) -> Result<Value, Error>;
}

/// Routes `method` to its binding, checking the arguments it takes first:
/// the one table both the in-process and the remote platform use.
pub async fn dispatch<C: BindingCalls + ?Sized>(
    calls: &C,
    who: &Principal,
    method: &str,
    args: Value,
) -> Result<Value, Error> {
    // Each binding: the arguments it takes, then its call.
    let with = |takes: &'static [&'static str]| Args::new(method, args, takes);
    match method {
        "docs.get" => calls.docs_get(who, with(&["collection", "id"])?).await,
        "docs.query" => calls.docs_query(who, with(&["collection", "query"])?).await,
        "docs.create" => {
            calls
                .docs_create(who, with(&["collection", "data", "id"])?)
                .await
        }
        "docs.update" => {
            calls
                .docs_update(who, with(&["collection", "id", "data"])?)
                .await
        }
        "docs.delete" => calls.docs_delete(who, with(&["collection", "id"])?).await,
        "kv.get" => calls.kv_get(who, with(&["key"])?).await,
        "kv.set" => calls.kv_set(who, with(&["key", "value", "ttl"])?).await,
        "kv.incr" => calls.kv_incr(who, with(&["key", "by"])?).await,
        "kv.delete" => calls.kv_delete(who, with(&["key"])?).await,
        "events.publish" => calls.events_publish(who, with(&["topic", "data"])?).await,
        "storage.get" => calls.storage_get(who, with(&["bucket", "key"])?).await,
        "storage.put" => {
            let takes = &["bucket", "key", "body", "content_type"];
            calls.storage_put(who, with(takes)?).await
        }
        "storage.sign" => {
            let takes = &["bucket", "key", "method", "expires"];
            calls.storage_sign(who, with(takes)?).await
        }
        _ => Err(Error::invalid(format!("unknown binding {method}"))),
    }
}

fn running<'a, T>(service: &'a Option<T>, name: &str) -> Result<&'a T, Error> {
    service
        .as_ref()
        .ok_or_else(|| Error::unavailable(format!("{name} is not running in this process")))
}

#[async_trait]
impl Platform for LocalPlatform {
    async fn call(&self, who: &Principal, method: &str, args: Value) -> Result<Value, Error> {
        dispatch(self, who, method, args).await
    }

    async fn secrets(
        &self,
        who: &Principal,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, Error> {
        let mut out = BTreeMap::new();
        if names.is_empty() {
            return Ok(out);
        }
        let kms = running(&self.kms, "BunKMS")?;
        for name in names {
            let (value, _) = kms.secret(who, &who.project, name, None).await?;
            let text = std::str::from_utf8(&value).map_err(|_| {
                Error::invalid(format!(
                    "secret {name} holds bytes that are not UTF-8 text; functions receive text secrets"
                ))
            })?;
            out.insert(name.clone(), text.to_string());
        }
        Ok(out)
    }
}

#[async_trait]
impl BindingCalls for LocalPlatform {
    // ---- docs ----

    async fn docs_get(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let collection = args.string("collection")?;
        let id = args.string("id")?;
        let docs = running(&self.docs, "Bundoc")?;
        match docs.get(who, &who.project, &collection, &id).await {
            Ok(doc) => Ok(doc),
            Err(Error::NotFound(message)) => {
                document_missing(docs, who, &collection, message).await?;
                Ok(Value::Null)
            }
            Err(e) => Err(e),
        }
    }

    async fn docs_query(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let collection = args.string("collection")?;
        let query = args.object_or_absent("query")?;
        let docs = running(&self.docs, "Bundoc")?;
        let page = docs.query(who, &who.project, &collection, &query).await?;
        Ok(json!(page))
    }

    async fn docs_create(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let collection = args.string("collection")?;
        let mut data = args.object("data")?;
        let id = args.optional_string("id")?;
        if let (Some(id), Value::Object(map)) = (id, &mut data) {
            if map.get("_id").is_some_and(|given| given != &json!(id)) {
                return Err(args.invalid("data._id differs from id"));
            }
            map.insert("_id".into(), json!(id));
        }
        let docs = running(&self.docs, "Bundoc")?;
        docs.create(who, &who.project, &collection, data).await
    }

    /// A JSON Merge Patch, as the REST API's PATCH.
    async fn docs_update(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let collection = args.string("collection")?;
        let id = args.string("id")?;
        let data = args.object("data")?;
        let docs = running(&self.docs, "Bundoc")?;
        docs.patch(who, &who.project, &collection, &id, data, None)
            .await
    }

    async fn docs_delete(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let collection = args.string("collection")?;
        let id = args.string("id")?;
        let docs = running(&self.docs, "Bundoc")?;
        match docs.delete(who, &who.project, &collection, &id, None).await {
            Ok(()) => Ok(json!(true)),
            Err(Error::NotFound(message)) => {
                document_missing(docs, who, &collection, message).await?;
                Ok(json!(false))
            }
            Err(e) => Err(e),
        }
    }

    // ---- kv ----

    async fn kv_get(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let key = args.string("key")?;
        let kv = running(&self.kv, "KV")?;
        match kv.get(who, &who.project, &key).await? {
            None => Ok(Value::Null),
            Some(bytes) => match std::str::from_utf8(&bytes) {
                Ok(text) => Ok(json!(text)),
                Err(_) => Err(Error::invalid(format!(
                    "kv.get: the value of {key:?} is binary, not UTF-8 text"
                ))),
            },
        }
    }

    async fn kv_set(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let key = args.string("key")?;
        let value = match args.required("value")? {
            Value::String(text) => text,
            other => other.to_string(),
        };
        let ttl = args.optional_u64("ttl", "a whole number of seconds")?;
        let kv = running(&self.kv, "KV")?;
        let request = PutRequest {
            ttl: ttl.map(std::time::Duration::from_secs),
            ..PutRequest::default()
        };
        kv.put(who, &who.project, &key, Bytes::from(value), request)
            .await?;
        Ok(json!(true))
    }

    async fn kv_incr(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let key = args.string("key")?;
        let by = match args.required("by")? {
            Value::Number(n) if n.is_i64() => n.as_i64(),
            _ => None,
        }
        .ok_or_else(|| args.wrong("by", "a whole number"))?;
        let kv = running(&self.kv, "KV")?;
        Ok(json!(kv.incr(who, &who.project, &key, by).await?))
    }

    async fn kv_delete(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let key = args.string("key")?;
        let kv = running(&self.kv, "KV")?;
        Ok(json!(kv.delete(who, &who.project, &key).await?))
    }

    // ---- events ----

    /// `{"seq", "topic"}`, as the REST API's publish.
    async fn events_publish(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let topic = args.string("topic")?;
        let data = args.required("data")?.to_string();
        let events = running(&self.events, "Buncast")?;
        let seq = events.publish(who, &who.project, &topic, &data).await?;
        Ok(json!({ "seq": seq, "topic": topic }))
    }

    // ---- storage ----

    /// `{size, content_type, etag, body}`, the body in base64.
    async fn storage_get(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let bucket = args.string("bucket")?;
        let key = args.string("key")?;
        let storage = running(&self.storage, "storage")?;
        let at = ObjectPath::new(&bucket, &key)?;
        let actor = Actor::Principal(who);
        let fetched = storage
            .get_object(actor, &who.project, &at, GetObject::default())
            .await;
        let (info, mut body) = match fetched {
            Ok(Fetched::Body { info, body, .. }) => (info, body),
            Ok(Fetched::NotModified(_)) => {
                return Err(Error::internal(
                    "an unconditional get answered not modified",
                ));
            }
            Err(Error::NotFound(_)) => {
                // The object is missing (null), or the bucket is.
                storage.existing_bucket(&who.project, &bucket).await?;
                return Ok(Value::Null);
            }
            Err(e) => return Err(e),
        };
        let too_large = |size: u64| {
            Error::PayloadTooLarge(format!(
                "object {key} is {size} bytes; storage.get reads at most {MAX_STORAGE_READ}: \
                     use storage.sign for a signed URL to larger objects"
            ))
        };
        if info.size > MAX_STORAGE_READ {
            return Err(too_large(info.size));
        }
        let mut bytes = Vec::with_capacity(info.size as usize);
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if (bytes.len() + chunk.len()) as u64 > MAX_STORAGE_READ {
                return Err(too_large((bytes.len() + chunk.len()) as u64));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(json!({
            "size": info.size,
            "content_type": info.content_type,
            "etag": info.etag,
            "body": STANDARD.encode(&bytes),
        }))
    }

    /// The object's description, as the REST API's PUT answers it (with
    /// `size` and `etag`).
    async fn storage_put(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let bucket = args.string("bucket")?;
        let key = args.string("key")?;
        let encoded = args.string("body")?;
        let content_type = args.optional_string("content_type")?;
        let bytes = STANDARD
            .decode(encoded.as_bytes())
            .map_err(|e| args.invalid(&format!("body is not standard base64 ({e})")))?;
        let storage = running(&self.storage, "storage")?;
        let at = ObjectPath::new(&bucket, &key)?;
        let put = PutObject {
            content_type,
            length: Some(bytes.len() as u64),
            metadata: BTreeMap::new(),
            condition: PutCondition::Any,
        };
        let chunks = if bytes.is_empty() {
            Vec::new()
        } else {
            vec![Ok(Bytes::from(bytes))]
        };
        let body: ByteStream = Box::pin(futures_util::stream::iter(chunks));
        let info = storage
            .put_object(Actor::Principal(who), &who.project, &at, put, body)
            .await?;
        serde_json::to_value(info).map_err(|e| Error::internal(format!("object info: {e}")))
    }

    /// `{url, method, expires_at}`, as the REST API's sign.
    async fn storage_sign(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let bucket = args.string("bucket")?;
        let key = args.string("key")?;
        let method = match args.string("method")?.to_ascii_uppercase().as_str() {
            "GET" => SignedMethod::Get,
            "PUT" => SignedMethod::Put,
            _ => return Err(args.wrong("method", "\"GET\" or \"PUT\"")),
        };
        let expires_in = args
            .optional_u64("expires", "a whole number of seconds")?
            .ok_or_else(|| args.missing("expires"))?;
        let storage = running(&self.storage, "storage")?;
        let request = SignRequest {
            key,
            method,
            expires_in,
            content_type: None,
            max_size: None,
        };
        let signed = storage.sign(who, &who.project, &bucket, request).await?;
        serde_json::to_value(signed).map_err(|e| Error::internal(format!("signed URL: {e}")))
    }
}

/// After a `not_found` from a document operation: `Ok` when the
/// collection exists (so the document is what is missing), else that
/// error.
async fn document_missing(
    docs: &Bundoc,
    who: &Principal,
    collection: &str,
    message: String,
) -> Result<(), Error> {
    match docs.definition(&who.project, collection).await {
        Ok(_) => Ok(()),
        Err(_) => Err(Error::NotFound(message)),
    }
}

/// A binding's arguments: a JSON object with only the names it takes.
/// `null` counts as absent for optional arguments. Public so that other
/// [`Platform`]s (the shells' remote one) validate exactly as this one.
pub struct Args<'a> {
    method: &'a str,
    map: Map<String, Value>,
}

impl<'a> Args<'a> {
    pub fn new(method: &'a str, args: Value, takes: &[&str]) -> Result<Args<'a>, Error> {
        let map = match args {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            _ => {
                return Err(Error::invalid(format!(
                    "{method} takes an object of arguments ({})",
                    takes.join(", ")
                )));
            }
        };
        if let Some(unknown) = map.keys().find(|k| !takes.contains(&k.as_str())) {
            return Err(Error::invalid(format!(
                "{method}: unknown argument {unknown:?} (it takes {})",
                takes.join(", ")
            )));
        }
        Ok(Args { method, map })
    }

    pub fn invalid(&self, what: &str) -> Error {
        Error::invalid(format!("{}: {what}", self.method))
    }

    pub fn missing(&self, name: &str) -> Error {
        self.invalid(&format!("missing argument {name}"))
    }

    pub fn wrong(&self, name: &str, wanted: &str) -> Error {
        self.invalid(&format!("{name} must be {wanted}"))
    }

    /// A required argument (it may be `null`).
    pub fn required(&mut self, name: &str) -> Result<Value, Error> {
        self.map.remove(name).ok_or_else(|| self.missing(name))
    }

    pub fn optional(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    pub fn string(&mut self, name: &str) -> Result<String, Error> {
        match self.required(name)? {
            Value::String(s) => Ok(s),
            _ => Err(self.wrong(name, "a string")),
        }
    }

    pub fn optional_string(&mut self, name: &str) -> Result<Option<String>, Error> {
        match self.optional(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong(name, "a string")),
        }
    }

    pub fn optional_u64(&mut self, name: &str, wanted: &str) -> Result<Option<u64>, Error> {
        match self.optional(name) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| self.wrong(name, wanted)),
        }
    }

    pub fn object(&mut self, name: &str) -> Result<Value, Error> {
        match self.required(name)? {
            v @ Value::Object(_) => Ok(v),
            _ => Err(self.wrong(name, "an object")),
        }
    }

    /// An object, `{}` when absent.
    pub fn object_or_absent(&mut self, name: &str) -> Result<Value, Error> {
        match self.optional(name) {
            None => Ok(json!({})),
            Some(v @ Value::Object(_)) => Ok(v),
            Some(_) => Err(self.wrong(name, "an object")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ErrorCode;
    use crate::auth::{PrincipalKind, Rights};
    use crate::docs::DocsMetrics;
    use crate::docs::adapters::MemoryDocStore;
    use crate::events::adapters::BusConfig;
    use crate::events::adapters::memory::MemoryBus;
    use crate::events::{EventLimits, EventMetrics};
    use crate::id::ProjectId;
    use crate::kms::adapters::memory::MemoryKms;
    use crate::kms::master::MasterKey;
    use crate::kms::{KmsLimits, KmsMetrics};
    use crate::kv::adapters::memory::MemoryKv;
    use crate::kv::{Engine as KvEngine, EngineConfig, KvLimits, KvMetrics};
    use crate::storage::adapters::memory::{MemoryBlobs, MemoryMeta};
    use crate::storage::{BucketSettings, StorageLimits, StorageMetrics, StorageSecret};

    fn project(name: &str) -> ProjectId {
        ProjectId::new(name).unwrap()
    }

    /// A function's credential, as the runtime makes it.
    fn function(p: &str) -> Principal {
        Principal {
            subject: "function:hello".into(),
            kind: PrincipalKind::SecretKey,
            project: project(p),
            rights: Rights::READ_WRITE,
        }
    }

    fn admin(p: &str) -> Principal {
        Principal {
            subject: "sk".into(),
            kind: PrincipalKind::SecretKey,
            project: project(p),
            rights: Rights::ALL,
        }
    }

    fn events() -> Events {
        let metrics = Arc::new(EventMetrics::unregistered());
        Events::new(
            Arc::new(MemoryBus::new(BusConfig::default(), metrics.clone())),
            EventLimits::default(),
            metrics,
        )
    }

    /// Every service, in memory.
    fn platform() -> LocalPlatform {
        let events = events();
        LocalPlatform {
            docs: Some(Bundoc::new(
                Arc::new(MemoryDocStore::new()),
                events.clone(),
                None,
                Default::default(),
                Arc::new(DocsMetrics::unregistered()),
            )),
            kv: Some(Kv::new(
                Arc::new(MemoryKv::new(Arc::new(KvEngine::new(
                    EngineConfig::default(),
                )))),
                events.clone(),
                KvLimits::default(),
                Arc::new(KvMetrics::unregistered()),
            )),
            events: Some(events),
            storage: Some(Storage::new(
                Arc::new(MemoryMeta::new()),
                Arc::new(MemoryBlobs::new()),
                StorageLimits::default(),
                StorageMetrics::unregistered(),
                StorageSecret::new(&[3; 32]),
            )),
            kms: Some(Kms::new(
                Arc::new(MemoryKms::new()),
                Arc::new(MasterKey::parse(&"ab".repeat(32)).unwrap()),
                KmsLimits::default(),
                Arc::new(KmsMetrics::unregistered()),
            )),
        }
    }

    async fn call(p: &LocalPlatform, who: &Principal, method: &str, args: Value) -> Value {
        p.call(who, method, args)
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    async fn refused(p: &LocalPlatform, who: &Principal, method: &str, args: Value) -> Error {
        match p.call(who, method, args).await {
            Ok(v) => panic!("{method} answered {v}"),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn unknown_methods_and_bad_arguments_are_invalid() {
        let p = LocalPlatform::default();
        let who = function("a");
        let cases = [
            ("foo.bar", json!({}), vec!["unknown binding foo.bar"]),
            (
                "docs.get",
                json!({"collection": "c"}),
                vec!["docs.get", "missing argument id"],
            ),
            (
                "docs.get",
                json!({"collection": "c", "id": 5}),
                vec!["docs.get", "id must be a string"],
            ),
            (
                "docs.get",
                json!({"collection": "c", "id": "x", "extra": 1}),
                vec!["docs.get", "unknown argument \"extra\""],
            ),
            (
                "docs.get",
                json!(["c", "x"]),
                vec!["docs.get takes an object"],
            ),
            (
                "docs.create",
                json!({"collection": "c", "data": [1]}),
                vec!["data must be an object"],
            ),
            (
                "docs.create",
                json!({"collection": "c", "data": {}, "id": 7}),
                vec!["id must be a string"],
            ),
            (
                "docs.create",
                json!({"collection": "c", "data": {"_id": "a"}, "id": "b"}),
                vec!["data._id differs from id"],
            ),
            (
                "docs.query",
                json!({"collection": "c", "query": "x"}),
                vec!["query must be an object"],
            ),
            (
                "docs.update",
                json!({"collection": "c", "id": "x"}),
                vec!["missing argument data"],
            ),
            (
                "kv.set",
                json!({"key": "k"}),
                vec!["kv.set", "missing argument value"],
            ),
            (
                "kv.set",
                json!({"key": "k", "value": "v", "ttl": "1"}),
                vec!["ttl must be"],
            ),
            (
                "kv.set",
                json!({"key": "k", "value": "v", "ttl": -1}),
                vec!["ttl must be"],
            ),
            (
                "kv.incr",
                json!({"key": "k", "by": 1.5}),
                vec!["by must be a whole number"],
            ),
            ("kv.incr", json!({"key": "k"}), vec!["missing argument by"]),
            ("kv.get", json!({}), vec!["kv.get", "missing argument key"]),
            (
                "events.publish",
                json!({"topic": "t"}),
                vec!["missing argument data"],
            ),
            (
                "storage.put",
                json!({"bucket": "b", "key": "k", "body": "!!"}),
                vec!["base64"],
            ),
            (
                "storage.sign",
                json!({"bucket": "b", "key": "k", "method": "DELETE", "expires": 60}),
                vec!["method must be"],
            ),
            (
                "storage.sign",
                json!({"bucket": "b", "key": "k", "method": "GET"}),
                vec!["missing argument expires"],
            ),
        ];
        for (method, args, says) in cases {
            let err = refused(&p, &who, method, args.clone()).await;
            assert_eq!(
                err.code(),
                ErrorCode::InvalidInput,
                "{method} {args}: {err}"
            );
            for s in says {
                assert!(err.to_string().contains(s), "{method} {args}: {err}");
            }
        }
    }

    #[tokio::test]
    async fn missing_services_are_unavailable() {
        let p = LocalPlatform::default();
        let who = function("a");
        let cases = [
            ("docs.get", json!({"collection": "c", "id": "x"}), "Bundoc"),
            ("kv.get", json!({"key": "k"}), "KV"),
            (
                "events.publish",
                json!({"topic": "t", "data": 1}),
                "Buncast",
            ),
            ("storage.get", json!({"bucket": "b", "key": "k"}), "storage"),
        ];
        for (method, args, name) in cases {
            let err = refused(&p, &who, method, args).await;
            assert_eq!(err.code(), ErrorCode::Unavailable);
            assert_eq!(
                err.to_string(),
                format!("{name} is not running in this process")
            );
        }
        let err = p.secrets(&who, &["a".into()]).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unavailable);
        assert!(p.secrets(&who, &[]).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn documents_work_and_stay_in_their_project() {
        let p = platform();
        let docs = p.docs.clone().unwrap();
        for name in ["a", "b"] {
            docs.create_collection(&admin(name), &project(name), &json!({"name": "notes"}))
                .await
                .unwrap();
        }
        let (fa, fb) = (function("a"), function("b"));
        let created = call(
            &p,
            &fa,
            "docs.create",
            json!({"collection": "notes", "data": {"title": "hi"}, "id": "n1"}),
        )
        .await;
        assert_eq!(created["_id"], "n1");
        assert_eq!(created["_version"], 1);
        let got = call(
            &p,
            &fa,
            "docs.get",
            json!({"collection": "notes", "id": "n1"}),
        )
        .await;
        assert_eq!(got, created);
        let missing = call(
            &p,
            &fa,
            "docs.get",
            json!({"collection": "notes", "id": "n2"}),
        )
        .await;
        assert_eq!(missing, Value::Null);
        let err = refused(
            &p,
            &fa,
            "docs.get",
            json!({"collection": "nope", "id": "n1"}),
        )
        .await;
        assert_eq!(err.code(), ErrorCode::NotFound);

        let updated = call(
            &p,
            &fa,
            "docs.update",
            json!({"collection": "notes", "id": "n1", "data": {"done": true}}),
        )
        .await;
        assert_eq!(
            (updated["title"].clone(), updated["done"].clone()),
            (json!("hi"), json!(true))
        );
        assert_eq!(updated["_version"], 2);
        let page = call(
            &p,
            &fa,
            "docs.query",
            json!({"collection": "notes", "query": {"filter": {"done": true}}}),
        )
        .await;
        assert_eq!(page["documents"].as_array().map(Vec::len), Some(1));
        assert!(page.get("next_cursor").is_some());

        // Project b sees nothing of a's document.
        let other = call(
            &p,
            &fb,
            "docs.get",
            json!({"collection": "notes", "id": "n1"}),
        )
        .await;
        assert_eq!(other, Value::Null);
        let other = call(&p, &fb, "docs.query", json!({"collection": "notes"})).await;
        assert_eq!(other["documents"], json!([]));
        let deleted = call(
            &p,
            &fb,
            "docs.delete",
            json!({"collection": "notes", "id": "n1"}),
        )
        .await;
        assert_eq!(deleted, json!(false));

        let deleted = call(
            &p,
            &fa,
            "docs.delete",
            json!({"collection": "notes", "id": "n1"}),
        )
        .await;
        assert_eq!(deleted, json!(true));
        let again = call(
            &p,
            &fa,
            "docs.delete",
            json!({"collection": "notes", "id": "n1"}),
        )
        .await;
        assert_eq!(again, json!(false));
    }

    #[tokio::test]
    async fn keys_work_and_stay_in_their_project() {
        let p = platform();
        let (fa, fb) = (function("a"), function("b"));
        let set = call(
            &p,
            &fa,
            "kv.set",
            json!({"key": "greeting", "value": "hi", "ttl": 60}),
        )
        .await;
        assert_eq!(set, json!(true));
        assert_eq!(
            call(&p, &fa, "kv.get", json!({"key": "greeting"})).await,
            json!("hi")
        );
        call(&p, &fa, "kv.set", json!({"key": "obj", "value": {"n": 1}})).await;
        assert_eq!(
            call(&p, &fa, "kv.get", json!({"key": "obj"})).await,
            json!("{\"n\":1}")
        );
        assert_eq!(
            call(&p, &fa, "kv.incr", json!({"key": "hits", "by": 5})).await,
            json!(5)
        );
        assert_eq!(
            call(&p, &fa, "kv.incr", json!({"key": "hits", "by": -2})).await,
            json!(3)
        );
        assert_eq!(
            call(&p, &fa, "kv.get", json!({"key": "missing"})).await,
            Value::Null
        );

        assert_eq!(
            call(&p, &fb, "kv.get", json!({"key": "greeting"})).await,
            Value::Null
        );
        assert_eq!(
            call(&p, &fb, "kv.delete", json!({"key": "greeting"})).await,
            json!(false)
        );

        assert_eq!(
            call(&p, &fa, "kv.delete", json!({"key": "greeting"})).await,
            json!(true)
        );
        assert_eq!(
            call(&p, &fa, "kv.get", json!({"key": "greeting"})).await,
            Value::Null
        );
    }

    #[tokio::test]
    async fn calls_are_authorized_as_the_caller() {
        let p = platform();
        let reader = Principal {
            rights: Rights::READ,
            ..function("a")
        };
        let err = refused(&p, &reader, "kv.set", json!({"key": "k", "value": "v"})).await;
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
        let err = refused(
            &p,
            &reader,
            "events.publish",
            json!({"topic": "t", "data": 1}),
        )
        .await;
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
        assert_eq!(
            call(&p, &reader, "kv.get", json!({"key": "k"})).await,
            Value::Null
        );
    }

    #[tokio::test]
    async fn events_are_published_in_the_functions_project() {
        let p = platform();
        let fa = function("a");
        let published = call(
            &p,
            &fa,
            "events.publish",
            json!({"topic": "orders", "data": {"id": 7}}),
        )
        .await;
        assert!(
            published["seq"].as_u64().is_some_and(|s| s >= 1),
            "{published}"
        );
        assert_eq!(published["topic"], "orders");
        let events = p.events.clone().unwrap();
        let topics = events.topics(&admin("a"), &project("a")).await.unwrap();
        assert_eq!(topics.len(), 1);
        assert!(
            events
                .topics(&admin("b"), &project("b"))
                .await
                .unwrap()
                .is_empty()
        );
        let err = refused(&p, &fa, "events.publish", json!({"topic": "kv", "data": 1})).await;
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
    }

    #[tokio::test]
    async fn objects_work_and_stay_in_their_project() {
        let p = platform();
        let storage = p.storage.clone().unwrap();
        storage
            .create_bucket(
                &admin("a"),
                &project("a"),
                "files",
                BucketSettings::default(),
            )
            .await
            .unwrap();
        let (fa, fb) = (function("a"), function("b"));
        let put = call(
            &p,
            &fa,
            "storage.put",
            json!({"bucket": "files", "key": "dir/hello.txt", "body": STANDARD.encode("hello"), "content_type": "text/plain"}),
        )
        .await;
        assert_eq!(put["size"], 5);
        let etag = put["etag"].as_str().unwrap().to_string();
        let got = call(
            &p,
            &fa,
            "storage.get",
            json!({"bucket": "files", "key": "dir/hello.txt"}),
        )
        .await;
        assert_eq!(
            got,
            json!({"size": 5, "content_type": "text/plain", "etag": etag, "body": STANDARD.encode("hello")})
        );
        let missing = call(
            &p,
            &fa,
            "storage.get",
            json!({"bucket": "files", "key": "nope"}),
        )
        .await;
        assert_eq!(missing, Value::Null);
        let err = refused(
            &p,
            &fa,
            "storage.get",
            json!({"bucket": "other", "key": "k"}),
        )
        .await;
        assert_eq!(err.code(), ErrorCode::NotFound);

        let signed = call(
            &p,
            &fa,
            "storage.sign",
            json!({"bucket": "files", "key": "dir/hello.txt", "method": "GET", "expires": 60}),
        )
        .await;
        let url = signed["url"].as_str().unwrap();
        assert!(
            url.starts_with("/storage/v1/projects/a/buckets/files/objects/dir/hello.txt?"),
            "{url}"
        );
        assert!(signed["expires_at"].as_u64().is_some());

        // Too large to read into a function.
        let big = vec![0u8; MAX_STORAGE_READ as usize + 1];
        call(
            &p,
            &fa,
            "storage.put",
            json!({"bucket": "files", "key": "big", "body": STANDARD.encode(&big)}),
        )
        .await;
        let err = refused(
            &p,
            &fa,
            "storage.get",
            json!({"bucket": "files", "key": "big"}),
        )
        .await;
        assert_eq!(err.code(), ErrorCode::PayloadTooLarge);

        // Project b: a's bucket is not there; its own same-named bucket is
        // empty.
        let err = refused(
            &p,
            &fb,
            "storage.get",
            json!({"bucket": "files", "key": "dir/hello.txt"}),
        )
        .await;
        assert_eq!(err.code(), ErrorCode::NotFound);
        storage
            .create_bucket(
                &admin("b"),
                &project("b"),
                "files",
                BucketSettings::default(),
            )
            .await
            .unwrap();
        let other = call(
            &p,
            &fb,
            "storage.get",
            json!({"bucket": "files", "key": "dir/hello.txt"}),
        )
        .await;
        assert_eq!(other, Value::Null);
    }

    #[tokio::test]
    async fn secrets_are_read_in_the_functions_project() {
        let p = platform();
        let kms = p.kms.clone().unwrap();
        kms.put_secret(&admin("a"), &project("a"), "api_key", b"s3cr3t")
            .await
            .unwrap();
        let values = p
            .secrets(&function("a"), &["api_key".into()])
            .await
            .unwrap();
        assert_eq!(values.get("api_key").map(String::as_str), Some("s3cr3t"));
        let err = p
            .secrets(&function("a"), &["api_key".into(), "nope".into()])
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound);
        assert!(err.to_string().contains("nope"), "{err}");
        let err = p
            .secrets(&function("b"), &["api_key".into()])
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound);
    }
}
