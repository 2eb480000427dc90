use bunbase_core::Error;
use reqwest::{RequestBuilder, Response};

/// A connection to a BunBase server (the all-in-one, the gateway, or one
/// service directly — the URLs are the same). Each service's file adds its
/// accessor (`client.events()`, `client.kv()`, …), so this transport
/// depends on none of them.
#[derive(Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: Option<String>,
    /// The project `Client::docs` works in.
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

    /// The project that `Client::docs` works in.
    pub fn with_project(mut self, project: impl Into<String>) -> Client {
        self.project = Some(project.into());
        self
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

    /// Sends with the credential: the response, whatever its status.
    pub(crate) async fn send(&self, request: RequestBuilder) -> Result<Response, Error> {
        self.authorized(request).send().await.map_err(transport)
    }

    /// Sends with the credential: a success, or the server's error.
    pub(crate) async fn call(&self, request: RequestBuilder) -> Result<Response, Error> {
        check(self.send(request).await?).await
    }

    /// Sends with the credential; the JSON answer, or the server's error.
    pub(crate) async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<T, Error> {
        self.call(request)
            .await?
            .json()
            .await
            .map_err(|e| Error::internal(format!("unexpected response: {e}")))
    }

    /// Opens a Server-Sent Events stream at `url`, resuming after
    /// `position` (`Last-Event-ID`).
    pub(crate) async fn open_stream(
        &self,
        url: &str,
        position: Option<u64>,
    ) -> Result<EventBody, Error> {
        let mut request = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(position) = position {
            request = request.header("last-event-id", position.to_string());
        }
        Ok(Box::pin(self.call(request).await?.bytes_stream()))
    }

    pub(crate) fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

/// The bytes of an event stream.
pub(crate) type EventBody =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

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
/// and message), or the code of its status if the body is not in the
/// platform shape (e.g. a proxy's 502).
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
    Err(Error::from_http(status.as_u16(), &body, retry_after))
}
