use bunbase_core::{Error, ErrorCode};
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::events::EventsClient;

/// A connection to a BunBase server (the all-in-one, the gateway, or one
/// service directly — the URLs are the same).
#[derive(Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: Option<String>,
    /// The project [`Client::docs`] works in.
    pub(crate) project: Option<String>,
}

impl Client {
    /// `url` is the server's base, e.g. `http://127.0.0.1:8080`.
    pub fn new(url: impl Into<String>) -> Result<Client, Error> {
        let base = url.into().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::invalid(format!(
                "server URL must start with http:// or https://, got {base:?}"
            )));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("bunbase-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::internal(format!("HTTP client: {e}")))?;
        Ok(Client {
            http,
            base,
            token: None,
            project: None,
        })
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn with_token(mut self, token: impl Into<String>) -> Client {
        self.token = Some(token.into());
        self
    }

    /// The project that [`Client::docs`] works in.
    pub fn with_project(mut self, project: impl Into<String>) -> Client {
        self.project = Some(project.into());
        self
    }

    /// Bundoc (`/bundoc`): a collection of the project set with
    /// [`Client::with_project`].
    pub fn docs(&self, collection: &str) -> crate::docs::DocsCollection {
        crate::docs::DocsCollection::new(self.clone(), self.project.clone(), collection)
    }

    /// Bundoc: a collection of `project`.
    pub fn docs_in(&self, project: &str, collection: &str) -> crate::docs::DocsCollection {
        crate::docs::DocsCollection::new(self.clone(), Some(project.to_string()), collection)
    }

    /// Bundoc: `project`'s collection definitions.
    pub fn collections(&self, project: &str) -> crate::docs::CollectionsClient {
        crate::docs::CollectionsClient::new(self.clone(), project)
    }

    pub fn events(&self) -> EventsClient {
        EventsClient::new(self.clone())
    }

    /// BunKMS (`/kms`): keys, encryption, signatures, secrets, audit.
    pub fn kms(&self) -> crate::kms::KmsClient {
        crate::kms::KmsClient::new(self.clone())
    }

    /// Bunder Manager (`/kv`): each project's key-value store.
    pub fn kv(&self) -> crate::kv::KvClient {
        crate::kv::KvClient::new(self.clone())
    }

    /// The Platform API (`/api`): accounts, projects, keys, end users.
    pub fn platform(&self) -> crate::platform::PlatformClient {
        crate::platform::PlatformClient::new(self.clone())
    }

    /// Whether the server's `/health` answers 200 (the error names the
    /// failing checks otherwise).
    pub async fn health(&self) -> Result<(), Error> {
        let response = self
            .http
            .get(self.url("/health"))
            .send()
            .await
            .map_err(transport)?;
        if response.status().is_success() {
            return Ok(());
        }
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Err(Error::Unavailable(format!(
            "{}/health answered {status}: {body}",
            self.base
        )))
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends with the credential; the JSON answer, or the server's error.
    pub(crate) async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<T, Error> {
        let response = self.authorized(request).send().await.map_err(transport)?;
        check(response)
            .await?
            .json()
            .await
            .map_err(|e| Error::internal(format!("unexpected response: {e}")))
    }

    pub(crate) fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

/// Percent-encodes one path segment.
pub(crate) fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'*') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn transport(e: reqwest::Error) -> Error {
    Error::Unavailable(format!("request failed: {e}"))
}

/// Turns a non-success response into the server's error (its stable code
/// and message), or a generic one if the body is not in the platform shape.
pub(crate) async fn check(response: Response) -> Result<Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(std::time::Duration::from_secs);
    let body = response.text().await.unwrap_or_default();
    let parsed: Option<(ErrorCode, String)> = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let code = ErrorCode::parse(v["error"]["code"].as_str()?)?;
            Some((
                code,
                v["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ))
        });
    let (code, message) = parsed.unwrap_or_else(|| {
        let code = match status {
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
            StatusCode::FORBIDDEN => ErrorCode::PermissionDenied,
            s if s.is_server_error() => ErrorCode::Unavailable,
            _ => ErrorCode::InvalidInput,
        };
        (code, format!("HTTP {status}"))
    });
    Err(match code {
        ErrorCode::RateLimited => Error::RateLimited {
            message,
            retry_after,
        },
        _ => Error::from_code(code, message),
    })
}
