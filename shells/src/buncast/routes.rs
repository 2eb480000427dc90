use axum::extract::{Path, State};
use axum::http::StatusCode;
use bunbase_core::ProjectId;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::BuncastState;
use crate::kit::{ApiJson, ApiResult, Auth};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    data: Box<RawValue>,
}

pub async fn publish(
    State(state): State<BuncastState>,
    Auth(who): Auth,
    Path((project, topic)): Path<(String, String)>,
    ApiJson(body): ApiJson<PublishBody>,
) -> ApiResult<(StatusCode, ApiJson<serde_json::Value>)> {
    let project = ProjectId::new(project)?;
    let seq = state
        .events
        .publish(&who, &project, &topic, body.data.get())
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(json!({ "seq": seq, "topic": topic })),
    ))
}

pub async fn list_topics(
    State(state): State<BuncastState>,
    Auth(who): Auth,
    Path(project): Path<String>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let project = ProjectId::new(project)?;
    let topics = state.events.topics(&who, &project).await?;
    Ok(ApiJson(json!({ "topics": topics })))
}

/// Where a subscriber resumes: `Last-Event-ID` (what a reconnecting
/// EventSource sends) wins over `?after=`.
pub fn resume_point(
    last_event_id: Option<&axum::http::HeaderValue>,
    after: Option<&str>,
) -> Result<Option<u64>, bunbase_core::Error> {
    let raw = match last_event_id {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| {
                    bunbase_core::Error::invalid("Last-Event-ID must be a sequence number")
                })?
                .trim()
                .to_string(),
        ),
        None => after.map(str::to_string),
    };
    match raw {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s.parse::<u64>().map(Some).map_err(|_| {
            bunbase_core::Error::invalid(format!(
                "resume point {s:?} is not a sequence number (a non-negative integer)"
            ))
        }),
    }
}

#[derive(Deserialize)]
pub struct SubscribeQuery {
    pub after: Option<String>,
    #[allow(dead_code)]
    pub access_token: Option<String>,
}
