//! The Platform API from Rust: accounts, projects, members, API keys, a
//! project's end users, and the JWKS.

use bunbase_core::Error;
use bunbase_core::platform::{Member, Role};
use reqwest::{Method, RequestBuilder};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::transport::{Client, check, segment, transport};

/// Tokens from sign-up, sign-in and refresh (the type the server answers
/// with, as are the others here).
pub use bunbase_core::auth::IssuedTokens as Tokens;
/// A key just created: `secret` is shown this once.
pub use bunbase_core::auth::NewKey as CreatedKey;
/// One page of a project's end users; pass `next` as `after`.
pub use bunbase_core::auth::UsersPage;
/// An API key as listed (never the key itself).
pub use bunbase_core::auth::model::ApiKey as KeyInfo;
/// A project as the caller sees it (with the caller's role).
pub use bunbase_core::platform::ProjectView as ProjectInfo;

/// Platform API calls. Account calls use the client's token.
#[derive(Clone)]
pub struct PlatformClient {
    client: Client,
}

impl Client {
    /// The Platform API (`/api`): accounts, projects, keys, end users.
    pub fn platform(&self) -> PlatformClient {
        PlatformClient::new(self.clone())
    }
}

impl PlatformClient {
    pub(crate) fn new(client: Client) -> Self {
        PlatformClient { client }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .authorized(self.client.http.request(method, self.client.url(path)))
    }

    async fn json<T: DeserializeOwned>(request: RequestBuilder) -> Result<T, Error> {
        let response = check(request.send().await.map_err(transport)?).await?;
        response.json().await.map_err(transport)
    }

    async fn empty(request: RequestBuilder) -> Result<(), Error> {
        check(request.send().await.map_err(transport)?).await?;
        Ok(())
    }

    // Accounts

    pub async fn sign_up(&self, email: &str, password: &str) -> Result<Tokens, Error> {
        let body = json!({ "email": email, "password": password });
        Self::json(
            self.request(Method::POST, "/api/v1/auth/signup")
                .json(&body),
        )
        .await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Result<Tokens, Error> {
        let body = json!({ "email": email, "password": password });
        Self::json(
            self.request(Method::POST, "/api/v1/auth/signin")
                .json(&body),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, Error> {
        let body = json!({ "refresh_token": refresh_token });
        Self::json(
            self.request(Method::POST, "/api/v1/auth/refresh")
                .json(&body),
        )
        .await
    }

    /// Ends this token's session, or every session of the account.
    pub async fn sign_out(&self, everywhere: bool) -> Result<(), Error> {
        let body = json!({ "everywhere": everywhere });
        Self::empty(
            self.request(Method::POST, "/api/v1/auth/signout")
                .json(&body),
        )
        .await
    }

    pub async fn me(&self) -> Result<Value, Error> {
        Self::json(self.request(Method::GET, "/api/v1/auth/me")).await
    }

    pub async fn jwks(&self) -> Result<Value, Error> {
        Self::json(self.request(Method::GET, "/api/.well-known/jwks.json")).await
    }

    // Projects

    pub async fn create_project(&self, name: &str) -> Result<ProjectInfo, Error> {
        Self::json(
            self.request(Method::POST, "/api/v1/projects")
                .json(&json!({ "name": name })),
        )
        .await
    }

    pub async fn projects(&self) -> Result<Vec<ProjectInfo>, Error> {
        #[derive(Deserialize)]
        struct Body {
            projects: Vec<ProjectInfo>,
        }
        let body: Body = Self::json(self.request(Method::GET, "/api/v1/projects")).await?;
        Ok(body.projects)
    }

    fn project_path(project: &str, rest: &str) -> String {
        format!("/api/v1/projects/{}{rest}", segment(project))
    }

    pub async fn project(&self, project: &str) -> Result<ProjectInfo, Error> {
        Self::json(self.request(Method::GET, &Self::project_path(project, ""))).await
    }

    pub async fn rename_project(&self, project: &str, name: &str) -> Result<ProjectInfo, Error> {
        let request = self
            .request(Method::PATCH, &Self::project_path(project, ""))
            .json(&json!({ "name": name }));
        Self::json(request).await
    }

    pub async fn delete_project(&self, project: &str) -> Result<(), Error> {
        Self::empty(self.request(Method::DELETE, &Self::project_path(project, ""))).await
    }

    pub async fn members(&self, project: &str) -> Result<Vec<Member>, Error> {
        #[derive(Deserialize)]
        struct Body {
            members: Vec<Member>,
        }
        let body: Body =
            Self::json(self.request(Method::GET, &Self::project_path(project, "/members"))).await?;
        Ok(body.members)
    }

    /// Adds an account (by email) or changes its role.
    pub async fn put_member(
        &self,
        project: &str,
        email: &str,
        role: Role,
    ) -> Result<Member, Error> {
        let body = json!({ "email": email, "role": role });
        Self::json(
            self.request(Method::PUT, &Self::project_path(project, "/members"))
                .json(&body),
        )
        .await
    }

    pub async fn remove_member(&self, project: &str, account_id: &str) -> Result<(), Error> {
        let path = Self::project_path(project, &format!("/members/{}", segment(account_id)));
        Self::empty(self.request(Method::DELETE, &path)).await
    }

    // API keys

    /// `kind` is `"secret"` or `"publishable"`.
    pub async fn create_key(
        &self,
        project: &str,
        name: &str,
        kind: &str,
    ) -> Result<CreatedKey, Error> {
        let body = json!({ "name": name, "kind": kind });
        Self::json(
            self.request(Method::POST, &Self::project_path(project, "/keys"))
                .json(&body),
        )
        .await
    }

    pub async fn keys(&self, project: &str) -> Result<Vec<KeyInfo>, Error> {
        #[derive(Deserialize)]
        struct Body {
            keys: Vec<KeyInfo>,
        }
        let body: Body =
            Self::json(self.request(Method::GET, &Self::project_path(project, "/keys"))).await?;
        Ok(body.keys)
    }

    pub async fn revoke_key(&self, project: &str, key_id: &str) -> Result<(), Error> {
        let path = Self::project_path(project, &format!("/keys/{}", segment(key_id)));
        Self::empty(self.request(Method::DELETE, &path)).await
    }

    // A project's end users (admin)

    pub async fn users(
        &self,
        project: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<UsersPage, Error> {
        let mut path = Self::project_path(project, &format!("/users?limit={limit}"));
        if let Some(after) = after {
            path.push_str(&format!("&after={}", segment(after)));
        }
        Self::json(self.request(Method::GET, &path)).await
    }

    pub async fn delete_user(&self, project: &str, user_id: &str) -> Result<(), Error> {
        let path = Self::project_path(project, &format!("/users/{}", segment(user_id)));
        Self::empty(self.request(Method::DELETE, &path)).await
    }

    /// End-user auth for an app: calls carry the project's publishable key.
    pub fn end_users(&self, project: &str, publishable_key: &str) -> EndUserAuth {
        EndUserAuth {
            client: self.client.clone(),
            project: project.to_string(),
            apikey: publishable_key.to_string(),
        }
    }
}

/// Sign-up/in/refresh/out for a project's end users.
#[derive(Clone)]
pub struct EndUserAuth {
    client: Client,
    project: String,
    apikey: String,
}

impl EndUserAuth {
    fn request(&self, method: Method, action: &str, token: Option<&str>) -> RequestBuilder {
        let path = format!("/api/v1/projects/{}/auth/{action}", segment(&self.project));
        let request = self
            .client
            .http
            .request(method, self.client.url(&path))
            .header("apikey", &self.apikey);
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub async fn sign_up(&self, email: &str, password: &str) -> Result<Tokens, Error> {
        let body = json!({ "email": email, "password": password });
        PlatformClient::json(self.request(Method::POST, "signup", None).json(&body)).await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Result<Tokens, Error> {
        let body = json!({ "email": email, "password": password });
        PlatformClient::json(self.request(Method::POST, "signin", None).json(&body)).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, Error> {
        let body = json!({ "refresh_token": refresh_token });
        PlatformClient::json(self.request(Method::POST, "refresh", None).json(&body)).await
    }

    pub async fn sign_out(&self, access_token: &str, everywhere: bool) -> Result<(), Error> {
        let body = json!({ "everywhere": everywhere });
        PlatformClient::empty(
            self.request(Method::POST, "signout", Some(access_token))
                .json(&body),
        )
        .await
    }

    pub async fn me(&self, access_token: &str) -> Result<Value, Error> {
        PlatformClient::json(self.request(Method::GET, "me", Some(access_token))).await
    }
}
