//! A router that remembers its routes. axum's `Router` cannot list what it
//! serves, so each service declares its API through [`Routes`], which
//! records every `(method, path pattern)` as it adds the handler, and then
//! becomes the real router. What the list says is what the router serves:
//! the isolation matrix (`tests/integration/isolation.rs`) reads the list
//! from the same function that builds the router, so a route added without
//! a row in the matrix fails it.

use std::fmt;

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, on};

/// One route: a method and the path pattern axum matches
/// (`/events/v1/projects/{project}/topics`). A `GET` route also answers
/// `HEAD` (axum adds it), which is not listed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route {
    pub method: String,
    pub path: String,
}

impl Route {
    pub fn new(method: &Method, path: &str) -> Route {
        Route {
            method: method.as_str().to_string(),
            path: path.to_string(),
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// A [`Router`] being built, with the list of its routes.
pub struct Routes<S = ()> {
    router: Router<S>,
    list: Vec<Route>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Routes::new()
    }
}

macro_rules! method {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        pub fn $name<H, T>(self, path: &str, handler: H) -> Self
        where
            H: Handler<T, S>,
            T: 'static,
        {
            self.add(Method::$method, MethodFilter::$method, path, handler)
        }
    };
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Routes<S> {
        Routes {
            router: Router::new(),
            list: Vec::new(),
        }
    }

    method!(
        /// `GET path` (and `HEAD`) → `handler`.
        get,
        GET
    );
    method!(
        /// `POST path` → `handler`.
        post,
        POST
    );
    method!(
        /// `PUT path` → `handler`.
        put,
        PUT
    );
    method!(
        /// `PATCH path` → `handler`.
        patch,
        PATCH
    );
    method!(
        /// `DELETE path` → `handler`.
        delete,
        DELETE
    );
    method!(
        /// `OPTIONS path` → `handler` (functions answer CORS preflights
        /// themselves).
        options,
        OPTIONS
    );

    /// Methods of one path are merged into one method router, as axum's
    /// `Router::route` does; the same method twice on a path panics, as
    /// it does there.
    fn add<H, T>(mut self, method: Method, filter: MethodFilter, path: &str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.router = self.router.route(path, on(filter, handler));
        self.list.push(Route::new(&method, path));
        self
    }

    /// The routes, in the order they were added.
    pub fn list(&self) -> &[Route] {
        &self.list
    }

    /// The router, its handlers given `state`.
    pub fn with_state<S2>(self, state: S) -> Router<S2> {
        self.router.with_state(state)
    }
}

impl Routes<()> {
    /// The router of routes that need no state.
    pub fn into_router(self) -> Router {
        self.router
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    #[tokio::test]
    async fn lists_what_it_serves() {
        let routes = Routes::<()>::new()
            .get("/a", || async { "get a" })
            .post("/a", || async { "post a" })
            .delete("/b/{id}", || async { "delete b" });
        let listed: Vec<String> = routes.list().iter().map(ToString::to_string).collect();
        assert_eq!(listed, ["GET /a", "POST /a", "DELETE /b/{id}"]);
        let router = routes.into_router();
        for (method, path, status) in [
            ("GET", "/a", StatusCode::OK),
            ("POST", "/a", StatusCode::OK),
            ("DELETE", "/b/1", StatusCode::OK),
            ("PUT", "/a", StatusCode::METHOD_NOT_ALLOWED),
            ("GET", "/b/1", StatusCode::METHOD_NOT_ALLOWED),
        ] {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            let answer = router.clone().oneshot(request).await.unwrap();
            assert_eq!(answer.status(), status, "{method} {path}");
        }
    }
}
