//! Building the identity service from a binary's options (bun-auth and the
//! platform run the same service on the same database).

use std::sync::Arc;
use std::time::Duration;

use bunbase_core::Error;
use bunbase_core::auth::password::Passwords;
use bunbase_core::auth::{AuthMetrics, Identity, IdentityConfig, IdentityStore};
use bunbase_core::cache::RedisCache;
use bunbase_core::config::Secret;
use bunbase_core::metrics::Registry;

/// What the identity-serving binaries are told.
pub struct IdentityOptions<'a> {
    pub database_url: &'a Secret,
    pub public_url: &'a str,
    pub access_ttl_secs: u64,
    pub key_rotation_days: u64,
    pub cache_url: Option<&'a str>,
}

/// Opens the store (migrating it) and starts the service.
pub async fn build(
    options: IdentityOptions<'_>,
    registry: &Registry,
) -> Result<(Arc<Identity>, Arc<dyn IdentityStore>), Error> {
    let store = bunbase_core::auth::adapters::sql::open(options.database_url.expose()).await?;
    let identity = Identity::new(
        store.clone(),
        store.clone(),
        Passwords::owasp(),
        IdentityConfig {
            issuer: format!("{}/api", options.public_url.trim_end_matches('/')),
            access_ttl: Duration::from_secs(options.access_ttl_secs.clamp(60, 24 * 3600)),
            key_rotation: Duration::from_secs(options.key_rotation_days.max(1) * 24 * 3600),
            ..IdentityConfig::default()
        },
        Arc::new(AuthMetrics::new(registry)?),
    )
    .await?;
    let identity = match options.cache_url {
        Some(url) => identity.with_cache(Arc::new(RedisCache::new(
            url,
            "bunbase",
            Duration::from_millis(250),
        )?)),
        None => identity,
    };
    Ok((Arc::new(identity), store))
}
