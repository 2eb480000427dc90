//! BunAuth's gRPC shell: the identity service for the other services
//! (port 50051, internal only). Thin: read the request, call core, map the
//! error with the shared gRPC code mapping.

use std::sync::Arc;

use bunbase_client::grpc::bunauth::bun_auth_server::BunAuth;
use bunbase_client::grpc::bunauth::{
    CreateKeyRequest, CreateProjectRequest, CreatedKey, Credentials, DeletedProject,
    DeletedProjectList, DeletedProjectsRequest, Empty, JwksResponse, Key, KeyList, Principal,
    Project, ProjectList, ProjectRef, RefreshRequest, ResolveRequest, RevokeKeyRequest,
    SignOutRequest, SignOutResponse, Tokens,
};
use bunbase_client::grpc::{principal_to_proto, status_from_error};
use bunbase_core::auth::model::{ApiKey, KeyKind};
use bunbase_core::auth::{AccountSession, Audience, ClientInfo, Identity, IssuedTokens};
use bunbase_core::platform::DeletionFeed;
use bunbase_core::{Error, ProjectId};
use prometheus::IntCounterVec;
use tonic::{Request, Response, Status};

pub use bunbase_client::grpc::bunauth::bun_auth_server::BunAuthServer;

/// The gRPC service over [`Identity`].
pub struct BunAuthService {
    identity: Arc<Identity>,
    calls: IntCounterVec,
}

impl BunAuthService {
    pub fn new(
        identity: Arc<Identity>,
        registry: &prometheus::Registry,
    ) -> Result<BunAuthService, Error> {
        Ok(BunAuthService {
            identity,
            calls: bunbase_core::metrics::counter_vec(
                registry,
                "grpc_requests_total",
                "gRPC calls by method and status code.",
                &["method", "code"],
            )?,
        })
    }

    fn finish<T>(&self, method: &str, result: Result<T, Error>) -> Result<Response<T>, Status> {
        if let Err(e) = &result
            && e.code() == bunbase_core::ErrorCode::Internal
        {
            tracing::error!(method, error = %e, "internal error");
        }
        let outcome = result.map(Response::new).map_err(|e| status_from_error(&e));
        let code = match &outcome {
            Ok(_) => "ok".to_string(),
            Err(status) => format!("{:?}", status.code()).to_lowercase(),
        };
        self.calls.with_label_values(&[method, &code]).inc();
        outcome
    }

    async fn account<T>(&self, request: &Request<T>) -> Result<AccountSession, Error> {
        let token = bearer(request)?;
        self.identity.account(&token).await
    }
}

fn bearer<T>(request: &Request<T>) -> Result<String, Error> {
    request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::Unauthenticated("missing credential: send authorization: Bearer <token>".into())
        })
}

fn client_info<T>(request: &Request<T>) -> ClientInfo {
    ClientInfo {
        ip: request.remote_addr().map(|a| a.ip()),
    }
}

fn audience(project: &str) -> Result<Option<ProjectId>, Error> {
    if project.is_empty() {
        Ok(None)
    } else {
        ProjectId::new(project).map(Some)
    }
}

fn tokens(t: IssuedTokens, subject: String) -> Tokens {
    Tokens {
        access_token: t.access_token,
        refresh_token: t.refresh_token,
        expires_in: t.expires_in,
        subject,
    }
}

fn key_to_proto(k: ApiKey) -> Key {
    Key {
        id: k.id,
        project: k.project.to_string(),
        name: k.name,
        kind: k.kind.as_str().to_string(),
        hint: k.hint,
        created_at: k.created_at,
        last_used_at: k.last_used_at,
        revoked_at: k.revoked_at,
    }
}

#[tonic::async_trait]
impl BunAuth for BunAuthService {
    async fn resolve(
        &self,
        request: Request<ResolveRequest>,
    ) -> Result<Response<Principal>, Status> {
        let r = request.into_inner();
        let result = async {
            let project = ProjectId::new(r.project)?;
            let principal = self.identity.resolve(&r.credential, &project).await?;
            Ok(principal_to_proto(&principal))
        }
        .await;
        self.finish("Resolve", result)
    }

    async fn sign_up(&self, request: Request<Credentials>) -> Result<Response<Tokens>, Status> {
        let client = client_info(&request);
        let r = request.into_inner();
        let result = async {
            let project = audience(&r.project)?;
            let aud = project.as_ref().map_or(Audience::Accounts, Audience::Users);
            let (id, issued) = self
                .identity
                .sign_up(aud, &r.email, &r.password, client)
                .await?;
            Ok(tokens(issued, id))
        }
        .await;
        self.finish("SignUp", result)
    }

    async fn sign_in(&self, request: Request<Credentials>) -> Result<Response<Tokens>, Status> {
        let client = client_info(&request);
        let r = request.into_inner();
        let result = async {
            let project = audience(&r.project)?;
            let aud = project.as_ref().map_or(Audience::Accounts, Audience::Users);
            let issued = self
                .identity
                .sign_in(aud, &r.email, &r.password, client)
                .await?;
            Ok(tokens(issued, String::new()))
        }
        .await;
        self.finish("SignIn", result)
    }

    async fn refresh(&self, request: Request<RefreshRequest>) -> Result<Response<Tokens>, Status> {
        let r = request.into_inner();
        let result = async {
            let project = audience(&r.project)?;
            let issued = self
                .identity
                .refresh(&r.refresh_token, project.as_ref())
                .await?;
            Ok(tokens(issued, String::new()))
        }
        .await;
        self.finish("Refresh", result)
    }

    async fn sign_out(
        &self,
        request: Request<SignOutRequest>,
    ) -> Result<Response<SignOutResponse>, Status> {
        let result = async {
            let token = bearer(&request)?;
            let ended = if request.get_ref().everywhere {
                self.identity.sign_out_everywhere(&token).await?
            } else {
                self.identity.sign_out(&token).await?;
                1
            };
            Ok(SignOutResponse {
                sessions_ended: ended,
            })
        }
        .await;
        self.finish("SignOut", result)
    }

    async fn create_project(
        &self,
        request: Request<CreateProjectRequest>,
    ) -> Result<Response<Project>, Status> {
        let result = async {
            let who = self.account(&request).await?;
            let p = self
                .identity
                .create_project(&who, &request.get_ref().name)
                .await?;
            Ok(Project {
                id: p.id.to_string(),
                name: p.name,
                created_at: p.created_at,
                role: "owner".into(),
            })
        }
        .await;
        self.finish("CreateProject", result)
    }

    async fn list_projects(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<ProjectList>, Status> {
        let result = async {
            let who = self.account(&request).await?;
            let projects = self
                .identity
                .my_projects(&who)
                .await?
                .into_iter()
                .map(|(p, role)| Project {
                    id: p.id.to_string(),
                    name: p.name,
                    created_at: p.created_at,
                    role: role.as_str().to_string(),
                })
                .collect();
            Ok(ProjectList { projects })
        }
        .await;
        self.finish("ListProjects", result)
    }

    async fn delete_project(
        &self,
        request: Request<ProjectRef>,
    ) -> Result<Response<Empty>, Status> {
        let result = async {
            let who = self.account(&request).await?;
            let project = ProjectId::new(request.get_ref().project.clone())?;
            self.identity.delete_project(&who, &project).await?;
            Ok(Empty {})
        }
        .await;
        self.finish("DeleteProject", result)
    }

    async fn deleted_projects(
        &self,
        request: Request<DeletedProjectsRequest>,
    ) -> Result<Response<DeletedProjectList>, Status> {
        let result = async {
            let r = request.get_ref();
            let limit = if r.limit == 0 { 1000 } else { r.limit as usize };
            let projects = self
                .identity
                .deleted_projects(r.since, limit)
                .await?
                .into_iter()
                .map(|(project, deleted_at)| DeletedProject {
                    project: project.to_string(),
                    deleted_at,
                })
                .collect();
            Ok(DeletedProjectList { projects })
        }
        .await;
        self.finish("DeletedProjects", result)
    }

    async fn create_key(
        &self,
        request: Request<CreateKeyRequest>,
    ) -> Result<Response<CreatedKey>, Status> {
        let result = async {
            let who = self.account(&request).await?;
            let r = request.get_ref();
            let project = ProjectId::new(r.project.clone())?;
            let created = self
                .identity
                .create_key(&who, &project, &r.name, KeyKind::parse(&r.kind)?)
                .await?;
            Ok(CreatedKey {
                key: Some(key_to_proto(created.key)),
                secret: created.secret,
            })
        }
        .await;
        self.finish("CreateKey", result)
    }

    async fn list_keys(&self, request: Request<ProjectRef>) -> Result<Response<KeyList>, Status> {
        let result = async {
            let who = self.account(&request).await?;
            let project = ProjectId::new(request.get_ref().project.clone())?;
            let keys = self
                .identity
                .keys(&who, &project)
                .await?
                .into_iter()
                .map(key_to_proto)
                .collect();
            Ok(KeyList { keys })
        }
        .await;
        self.finish("ListKeys", result)
    }

    async fn revoke_key(
        &self,
        request: Request<RevokeKeyRequest>,
    ) -> Result<Response<Empty>, Status> {
        let result = async {
            let who = self.account(&request).await?;
            let r = request.get_ref();
            let project = ProjectId::new(r.project.clone())?;
            self.identity.revoke_key(&who, &project, &r.key_id).await?;
            Ok(Empty {})
        }
        .await;
        self.finish("RevokeKey", result)
    }

    async fn jwks(&self, _request: Request<Empty>) -> Result<Response<JwksResponse>, Status> {
        let result = Ok(JwksResponse {
            jwks_json: self.identity.jwks().to_string(),
        });
        self.finish("Jwks", result)
    }
}

/// Serves BunAuth (and the standard gRPC health service) on `listener`
/// until `shutdown` triggers.
pub async fn serve_grpc(
    listener: tokio::net::TcpListener,
    identity: Arc<Identity>,
    registry: &prometheus::Registry,
    shutdown: crate::kit::Shutdown,
) -> Result<(), Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<BunAuthServer<BunAuthService>>().await;
    let service = BunAuthService::new(identity, registry)?;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(BunAuthServer::new(service))
        .serve_with_incoming_shutdown(incoming, async move { shutdown.token.cancelled().await })
        .await
        .map_err(|e| Error::internal(format!("gRPC server failed: {e}")))
}
