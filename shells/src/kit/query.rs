use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use bunbase_core::Error;
use serde::de::DeserializeOwned;

use super::ApiError;

/// The query string as `T`, with errors in the platform's shape. The
/// `access_token` parameter (a credential, read by [`super::Caller`]) is
/// left out, so `T` may refuse unknown fields without listing it.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let without_token: Vec<&str> = query
            .split('&')
            .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some("access_token"))
            .collect();
        serde_urlencoded::from_str(&without_token.join("&"))
            .map(ApiQuery)
            .map_err(|e| Error::invalid(format!("invalid query string: {e}")).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Page {
        after: Option<String>,
        limit: Option<usize>,
    }

    async fn parse(uri: &str) -> Result<Page, ApiError> {
        let mut parts = axum::http::Request::builder()
            .uri(uri)
            .body(())
            .unwrap()
            .into_parts()
            .0;
        ApiQuery::<Page>::from_request_parts(&mut parts, &())
            .await
            .map(|ApiQuery(page)| page)
    }

    #[tokio::test]
    async fn skips_the_credential_and_refuses_unknown_fields() {
        assert_eq!(
            parse("/x?access_token=t0k&after=a%20b&limit=5")
                .await
                .unwrap(),
            Page {
                after: Some("a b".into()),
                limit: Some(5)
            }
        );
        assert_eq!(
            parse("/x").await.unwrap(),
            Page {
                after: None,
                limit: None
            }
        );
        let err = parse("/x?expire=5").await.unwrap_err();
        assert!(err.0.to_string().contains("unknown field"), "{err:?}");
        assert!(parse("/x?limit=many").await.is_err());
    }
}
