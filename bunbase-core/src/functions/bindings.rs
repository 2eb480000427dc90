//! What a running function reaches: the platform acting as the function,
//! and `fetch` through the outbound gate with the function's allow-list.

use std::sync::Arc;

use async_trait::async_trait;

use super::outbound::Outbound;
use super::platform::Platform;
use super::runtime::Bindings;
use super::web::{FetchRequest, FetchResponse};
use crate::auth::Principal;
use crate::error::Error;

pub struct FunctionBindings {
    pub platform: Arc<dyn Platform>,
    pub outbound: Arc<Outbound>,
    pub who: Principal,
    pub allow_hosts: Vec<String>,
}

#[async_trait]
impl Bindings for FunctionBindings {
    async fn call(
        &self,
        method: &str,
        args: serde_json::Value,
    ) -> Result<serde_json::Value, Error> {
        self.platform.call(&self.who, method, args).await
    }

    async fn fetch(&self, request: FetchRequest) -> Result<FetchResponse, String> {
        self.outbound.fetch(&self.allow_hosts, request).await
    }
}
