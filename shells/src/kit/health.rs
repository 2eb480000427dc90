use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bunbase_core::Error;
use serde_json::{Map, Value, json};

/// A dependency `/health` asks about (a database, the event bus, …).
#[async_trait]
pub trait HealthCheck: Send + Sync {
    fn name(&self) -> &str;
    async fn check(&self) -> Result<(), Error>;
}

type CheckFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send>> + Send + Sync>;

struct FnCheck {
    name: String,
    check: CheckFn,
}

#[async_trait]
impl HealthCheck for FnCheck {
    fn name(&self) -> &str {
        &self.name
    }
    async fn check(&self) -> Result<(), Error> {
        (self.check)().await
    }
}

/// A health check from a closure returning a future.
pub fn health_check_fn<F, Fut>(name: &str, check: F) -> Arc<dyn HealthCheck>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    Arc::new(FnCheck {
        name: name.to_string(),
        check: Arc::new(move || Box::pin(check())),
    })
}

/// How long one dependency may take to answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs every check at once: 200 when all pass, else 503 naming the failures.
pub async fn report(checks: &[Arc<dyn HealthCheck>]) -> Response {
    let results = futures_util::future::join_all(checks.iter().map(|c| async move {
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, c.check()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.public_message()),
            Err(_) => Err(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
        };
        (c.name().to_string(), outcome)
    }))
    .await;
    let mut detail = Map::new();
    let mut failing = Vec::new();
    for (name, outcome) in results {
        match outcome {
            Ok(()) => {
                detail.insert(name, json!({ "status": "ok" }));
            }
            Err(message) => {
                detail.insert(
                    name.clone(),
                    json!({ "status": "unavailable", "message": message }),
                );
                failing.push(name);
            }
        }
    }
    if failing.is_empty() {
        (
            StatusCode::OK,
            axum::Json(json!({ "status": "ok", "checks": detail })),
        )
            .into_response()
    } else {
        let body = json!({
            "status": "unavailable",
            "failing": failing,
            "checks": Value::Object(detail),
        });
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    }
}
