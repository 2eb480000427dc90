//! Functions (`/functions` and the Platform API's
//! `/api/v1/projects/{p}/functions`): deploy, inspect, roll back, delete,
//! invoke, read the log.

use bunbase_core::Error;
use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::transport::{Client, segment, transport};

/// What a deploy sends: files, entry, env, secrets, triggers, auth, limits.
pub use bunbase_core::functions::Deployment;
/// A function with the version that serves.
pub use bunbase_core::functions::FunctionDetail;
/// A function as listed.
pub use bunbase_core::functions::FunctionInfo;
/// One invocation's record.
pub use bunbase_core::functions::Invocation;
/// A source file of a deployment.
pub use bunbase_core::functions::SourceFile;
/// A deployed version.
pub use bunbase_core::functions::Version as FunctionVersion;
/// Who may call, and what else runs a function.
pub use bunbase_core::functions::{AuthMode, LimitsRequest, Trigger};

pub struct FunctionsClient {
    client: Client,
}

/// One page of the invocation log, newest first.
#[derive(Debug, Clone, Deserialize)]
pub struct LogPage {
    pub invocations: Vec<Invocation>,
    /// Pass as `before` for the next page; `None` on the last.
    pub next: Option<String>,
}

/// A deployed version's sources.
#[derive(Debug, Clone, Deserialize)]
pub struct FunctionSource {
    pub version: u32,
    pub entry: String,
    pub files: Vec<SourceFile>,
}

/// A function's HTTP answer.
#[derive(Debug, Clone)]
pub struct FunctionResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
    /// The invocation's id in the log.
    pub invocation: Option<String>,
}

impl FunctionResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::invalid(format!("not JSON: {e}")))
    }
}

#[derive(Deserialize)]
struct Functions {
    functions: Vec<FunctionInfo>,
}

#[derive(Deserialize)]
struct Versions {
    versions: Vec<FunctionVersion>,
}

impl Client {
    /// Functions: deploy and manage them, invoke them.
    pub fn functions(&self) -> FunctionsClient {
        FunctionsClient {
            client: self.clone(),
        }
    }
}

impl FunctionsClient {
    fn manage(&self, project: &str, rest: &str) -> String {
        self.client.url(&format!(
            "/api/v1/projects/{}/functions{rest}",
            segment(project)
        ))
    }

    /// Deploys a new version of `name` (creating the function), which
    /// serves from now on.
    pub async fn deploy(
        &self,
        project: &str,
        name: &str,
        deployment: &Deployment,
    ) -> Result<FunctionVersion, Error> {
        let url = self.manage(project, &format!("/{}/versions", segment(name)));
        self.client
            .send_json(self.client.http.post(url).json(deployment))
            .await
    }

    pub async fn list(&self, project: &str) -> Result<Vec<FunctionInfo>, Error> {
        let request = self.client.http.get(self.manage(project, ""));
        Ok(self.client.send_json::<Functions>(request).await?.functions)
    }

    pub async fn get(&self, project: &str, name: &str) -> Result<FunctionDetail, Error> {
        let url = self.manage(project, &format!("/{}", segment(name)));
        self.client.send_json(self.client.http.get(url)).await
    }

    /// The function's versions, newest first.
    pub async fn versions(&self, project: &str, name: &str) -> Result<Vec<FunctionVersion>, Error> {
        let url = self.manage(project, &format!("/{}/versions", segment(name)));
        Ok(self
            .client
            .send_json::<Versions>(self.client.http.get(url))
            .await?
            .versions)
    }

    /// The sources of a version (the serving one if `None`).
    pub async fn source(
        &self,
        project: &str,
        name: &str,
        version: Option<u32>,
    ) -> Result<FunctionSource, Error> {
        let mut url = self.manage(project, &format!("/{}/source", segment(name)));
        if let Some(version) = version {
            url.push_str(&format!("?version={version}"));
        }
        self.client.send_json(self.client.http.get(url)).await
    }

    /// Makes `version` the one that serves.
    pub async fn rollback(
        &self,
        project: &str,
        name: &str,
        version: u32,
    ) -> Result<FunctionInfo, Error> {
        let url = self.manage(project, &format!("/{}/rollback", segment(name)));
        let request = self
            .client
            .http
            .post(url)
            .json(&json!({ "version": version }));
        self.client.send_json(request).await
    }

    pub async fn delete(&self, project: &str, name: &str) -> Result<(), Error> {
        let url = self.manage(project, &format!("/{}", segment(name)));
        self.client.call(self.client.http.delete(url)).await?;
        Ok(())
    }

    /// The project's invocation log (of one function if `function`).
    pub async fn logs(
        &self,
        project: &str,
        function: Option<&str>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<LogPage, Error> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(function) = function {
            query.push(("function", function.to_string()));
        }
        if let Some(before) = before {
            query.push(("before", before.to_string()));
        }
        let query = serde_urlencoded::to_string(&query).map_err(Error::internal)?;
        let request = self
            .client
            .http
            .get(format!("{}?{query}", self.manage(project, "/logs")));
        self.client.send_json(request).await
    }

    /// Calls the function over HTTP: `path` is appended to its URL (`""`,
    /// `/items/1?x=2`). A function's own error statuses are answers, not
    /// errors; the platform's refusals (401, 404, 429, 502) are errors.
    pub async fn invoke(
        &self,
        project: &str,
        name: &str,
        method: Method,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> Result<FunctionResponse, Error> {
        let url = self.client.url(&format!(
            "/functions/v1/projects/{}/fn/{}{path}",
            segment(project),
            segment(name)
        ));
        let response = self
            .client
            .send(self.client.http.request(method, url).body(body))
            .await?;
        let platform_error = response.headers().get("x-bunbase-invocation").is_none()
            && !response.status().is_success();
        if platform_error {
            return Err(crate::transport::check(response)
                .await
                .err()
                .unwrap_or_else(|| Error::internal("unexpected success")));
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let invocation = headers
            .get("x-bunbase-invocation")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.bytes().await.map_err(transport)?;
        Ok(FunctionResponse {
            status,
            headers,
            body,
            invocation,
        })
    }
}
