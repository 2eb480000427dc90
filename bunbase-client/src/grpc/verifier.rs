//! A [`TokenVerifier`] that asks BunAuth over gRPC, with a short cache and
//! stampede protection: concurrent checks of one credential share a single
//! call.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bunbase_core::auth::{Principal, TokenVerifier};
use bunbase_core::{Error, ErrorCode, ProjectId};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use tonic::transport::{Channel, Endpoint};

use super::convert::{error_from_status, principal_from_proto};
use super::proto::bunauth::bun_auth_client::BunAuthClient;
use super::proto::bunauth::{DeletedProjectsRequest, ResolveRequest};

#[derive(Debug, Clone, Copy)]
pub struct RemoteVerifierConfig {
    /// How long a resolved principal is reused.
    pub ttl: Duration,
    /// How long a refusal (unauthenticated, permission denied) is reused.
    pub negative_ttl: Duration,
    /// Entries kept at most (the cache is cleared of stale ones beyond).
    pub max_entries: usize,
    /// Longest wait for BunAuth.
    pub timeout: Duration,
}

impl Default for RemoteVerifierConfig {
    fn default() -> Self {
        RemoteVerifierConfig {
            ttl: Duration::from_secs(5),
            negative_ttl: Duration::from_secs(1),
            max_entries: 100_000,
            timeout: Duration::from_secs(3),
        }
    }
}

type Outcome = Result<Principal, (ErrorCode, String)>;
type Key = ([u8; 32], ProjectId);

struct Entry {
    outcome: Outcome,
    expires: Instant,
}

pub struct RemoteVerifier {
    client: BunAuthClient<Channel>,
    config: RemoteVerifierConfig,
    cache: std::sync::Mutex<HashMap<Key, Entry>>,
    inflight: std::sync::Mutex<HashMap<Key, Arc<OnceCell<Outcome>>>>,
    calls: AtomicU64,
}

impl RemoteVerifier {
    /// `url` is BunAuth's gRPC address, e.g. `http://bun-auth:50051`. The
    /// connection is made on first use (and re-made when lost).
    pub fn new(url: &str, config: RemoteVerifierConfig) -> Result<RemoteVerifier, Error> {
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| Error::invalid(format!("invalid BunAuth URL {url:?}: {e}")))?
            .timeout(config.timeout)
            .connect_timeout(config.timeout);
        Ok(RemoteVerifier {
            client: BunAuthClient::new(endpoint.connect_lazy()),
            config,
            cache: std::sync::Mutex::new(HashMap::new()),
            inflight: std::sync::Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
        })
    }

    /// Calls made to BunAuth so far (cache misses).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn cached(&self, key: &Key) -> Option<Outcome> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(key)
            .filter(|e| e.expires > Instant::now())
            .map(|e| e.outcome.clone())
    }

    fn remember(&self, key: Key, outcome: &Outcome) {
        let ttl = match outcome {
            Ok(_) => self.config.ttl,
            Err((ErrorCode::Unauthenticated | ErrorCode::PermissionDenied, _)) => {
                self.config.negative_ttl
            }
            Err(_) => return, // BunAuth trouble is not remembered.
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= self.config.max_entries {
            let now = Instant::now();
            cache.retain(|_, e| e.expires > now);
            if cache.len() >= self.config.max_entries {
                cache.clear();
            }
        }
        cache.insert(
            key,
            Entry {
                outcome: outcome.clone(),
                expires: Instant::now() + ttl,
            },
        );
    }

    async fn call(&self, token: &str, project: &ProjectId) -> Outcome {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let request = ResolveRequest {
            credential: token.to_string(),
            project: project.to_string(),
        };
        match self.client.clone().resolve(request).await {
            Ok(response) => principal_from_proto(response.into_inner())
                .map_err(|e| (e.code(), e.public_message())),
            Err(status) => {
                let e = error_from_status(&status);
                if matches!(e.code(), ErrorCode::Internal | ErrorCode::Unavailable) {
                    tracing::warn!(code = ?status.code(), message = status.message(), "BunAuth call failed");
                }
                Err((e.code(), status.message().to_string()))
            }
        }
    }
}

fn rebuild(outcome: Outcome) -> Result<Principal, Error> {
    outcome.map_err(|(code, message)| Error::from_code(code, message))
}

#[async_trait]
impl TokenVerifier for RemoteVerifier {
    async fn verify(&self, token: &str, project: &ProjectId) -> Result<Principal, Error> {
        let key: Key = (Sha256::digest(token.as_bytes()).into(), project.clone());
        if let Some(outcome) = self.cached(&key) {
            return rebuild(outcome);
        }
        let cell = self
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let outcome = cell.get_or_init(|| self.call(token, project)).await.clone();
        {
            let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            if inflight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                inflight.remove(&key);
                self.remember(key, &outcome);
            }
        }
        rebuild(outcome)
    }
}

#[async_trait]
impl bunbase_core::platform::DeletionFeed for RemoteVerifier {
    async fn deleted_projects(
        &self,
        since: u64,
        limit: usize,
    ) -> Result<Vec<(ProjectId, u64)>, Error> {
        let request = DeletedProjectsRequest {
            since,
            limit: limit.clamp(1, 1000) as u32,
        };
        let list = self
            .client
            .clone()
            .deleted_projects(request)
            .await
            .map_err(|status| error_from_status(&status))?
            .into_inner();
        list.projects
            .into_iter()
            .map(|p| Ok((ProjectId::new(p.project)?, p.deleted_at)))
            .collect()
    }
}
