//! Refusals as every Morsa server answers them: an [`ErrorBody`] in JSON with a stable code,
//! never axum's plain-text rejections or an empty 404/405, so a client (or a person with
//! `curl`) always gets a code to act on and a message that says what was wrong.
//!
//! - [`ApiPath`], [`ApiQuery`] and [`ApiJson`] are axum's `Path`, `Query` and `Json`
//!   extractors whose refusal is a [`Refusal`]: `bad_request` with axum's explanation, or
//!   `too_large` for a body over its limit, with axum's status.
//! - [`with_refusals`] gives a router a fallback for paths no route matches (`unknown_route`,
//!   404) and for a method a route does not take (`method_not_allowed`, 405, with `Allow`).
//! - [`within_time`] ends a request that takes longer than its limit with `request_timeout`
//!   (408), as middleware: `.layer(axum::middleware::from_fn_with_state(limit, within_time))`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::ErrorBody;
use crate::codes::{BAD_REQUEST, METHOD_NOT_ALLOWED, REQUEST_TIMEOUT, TOO_LARGE, UNKNOWN_ROUTE};

/// A refused request: its status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub StatusCode, pub ErrorBody);

impl Refusal {
    /// A refusal of a path, query or body that axum's extractor gave `status` and `text` for.
    fn malformed(status: StatusCode, text: String) -> Self {
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE { TOO_LARGE } else { BAD_REQUEST };
        Self(status, ErrorBody::new(code, text))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<PathRejection> for Refusal {
    fn from(rejection: PathRejection) -> Self {
        Self::malformed(rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for Refusal {
    fn from(rejection: QueryRejection) -> Self {
        Self::malformed(rejection.status(), rejection.body_text())
    }
}

impl From<JsonRejection> for Refusal {
    fn from(rejection: JsonRejection) -> Self {
        Self::malformed(rejection.status(), rejection.body_text())
    }
}

/// The refusal a server answered, as a client sees it: its status and [`ErrorBody`], and its
/// `Allow` header. `Err` (saying what was answered) unless the answer is an [`ErrorBody`] with
/// a message, in JSON with a JSON content type, of at most 1 MiB: what every refusal here is,
/// and what the route sweeps of the node and the coordinator check each refusal for.
pub async fn read_refusal(response: Response) -> Result<(Refusal, Option<String>), String> {
    let status = response.status();
    let header = |name| response.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let (content_type, allow) = (header(axum::http::header::CONTENT_TYPE), header(axum::http::header::ALLOW));
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .map_err(|error| format!("{status}: the body could not be read: {error}"))?;
    let text = String::from_utf8_lossy(&body);
    if content_type.as_deref() != Some("application/json") {
        return Err(format!("{status}, content type {content_type:?}: {text}"));
    }
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(error) if !error.message.is_empty() => Ok((Refusal(status, error), allow)),
        _ => Err(format!("{status}, not an error body with a message: {text}")),
    }
}

/// Path parameters, refused as a [`Refusal`].
#[derive(Debug, Clone, Copy)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refusal> {
        Ok(Self(Path::<T>::from_request_parts(parts, state).await?.0))
    }
}

/// A query string, refused as a [`Refusal`].
#[derive(Debug, Clone, Copy)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refusal> {
        Ok(Self(Query::<T>::from_request_parts(parts, state).await?.0))
    }
}

/// A JSON body, refused as a [`Refusal`].
#[derive(Debug, Clone, Copy)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Refusal;

    async fn from_request(request: Request, state: &S) -> Result<Self, Refusal> {
        Ok(Self(Json::<T>::from_request(request, state).await?.0))
    }
}

/// `router` with JSON refusals for unknown paths and methods a route does not take.
pub fn with_refusals<S: Clone + Send + Sync + 'static>(router: axum::Router<S>) -> axum::Router<S> {
    router.fallback(unknown_route).method_not_allowed_fallback(method_not_allowed)
}

async fn unknown_route(method: Method, uri: Uri) -> Refusal {
    Refusal(
        StatusCode::NOT_FOUND,
        ErrorBody::new(UNKNOWN_ROUTE, format!("no route for {method} {}: check the URL", uri.path())),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> Refusal {
    Refusal(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorBody::new(METHOD_NOT_ALLOWED, format!("{} does not take {method}", uri.path())),
    )
}

/// Middleware: runs the request's handler for at most `limit`, then answers `request_timeout`
/// (the handler is dropped, as tower-http's timeout drops it).
pub async fn within_time(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Refusal(
            StatusCode::REQUEST_TIMEOUT,
            ErrorBody::new(
                REQUEST_TIMEOUT,
                format!(
                    "{method} {path} took longer than {} ms: try again, or ask for less",
                    limit.as_millis()
                ),
            ),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, header};
    use axum::routing::get;
    use serde::Deserialize;
    use tower::ServiceExt as _;

    use super::*;

    #[derive(Deserialize)]
    struct Item {
        count: u32,
    }

    async fn by_path(ApiPath(_): ApiPath<(u32, String)>) -> &'static str {
        "ok"
    }

    async fn by_query(ApiQuery(item): ApiQuery<Item>) -> String {
        item.count.to_string()
    }

    async fn by_json(ApiJson(item): ApiJson<Item>) -> String {
        item.count.to_string()
    }

    async fn forever() -> &'static str {
        std::future::pending::<()>().await;
        "never"
    }

    fn router() -> Router {
        let routes = Router::new()
            .route("/items/{index}/{name}", get(by_path))
            .route("/items", get(by_query).post(by_json))
            .route("/slow", get(forever))
            .layer(axum::extract::DefaultBodyLimit::max(64));
        with_refusals(routes)
            .layer(axum::middleware::from_fn_with_state(Duration::from_millis(50), within_time))
    }

    /// The answer's status, its `Allow` header, and its body as an [`ErrorBody`] (which
    /// fails the test if the body is not one, in JSON, with a JSON content type).
    async fn refused(request: Request<Body>) -> (StatusCode, Option<String>, ErrorBody) {
        let response = router().oneshot(request).await.unwrap();
        let (Refusal(status, error), allow) =
            read_refusal(response).await.unwrap_or_else(|why| panic!("{why}"));
        (status, allow, error)
    }

    fn get_(uri: &str) -> Request<Body> {
        Request::get(uri).body(Body::empty()).unwrap()
    }

    fn post_json(body: &'static str) -> Request<Body> {
        Request::post("/items")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn the_extractors_take_good_input() {
        for request in [get_("/items/3/three"), get_("/items?count=3"), post_json(r#"{"count": 3}"#)] {
            let response = router().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    }

    #[tokio::test]
    async fn malformed_paths_queries_and_bodies_are_refused_in_json_with_a_code() {
        let (status, _, error) = refused(get_("/items/three/3")).await;
        assert_eq!((status, error.code.as_str()), (StatusCode::BAD_REQUEST, BAD_REQUEST));
        assert!(error.message.contains("three"), "{error}");
        let (status, _, error) = refused(get_("/items?count=many")).await;
        assert_eq!((status, error.code.as_str()), (StatusCode::BAD_REQUEST, BAD_REQUEST));
        let (status, _, error) = refused(get_("/items")).await;
        assert_eq!((status, error.code.as_str()), (StatusCode::BAD_REQUEST, BAD_REQUEST));
        assert!(error.message.contains("count"), "{error}");
        let (status, _, error) = refused(post_json("{count")).await;
        assert_eq!((status, error.code.as_str()), (StatusCode::BAD_REQUEST, BAD_REQUEST));
        let (status, _, error) = refused(post_json(r#"{"count": "three"}"#)).await;
        assert_eq!((status, error.code.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, BAD_REQUEST));
        let no_type = Request::post("/items").body(Body::from(r#"{"count": 3}"#)).unwrap();
        let (status, _, error) = refused(no_type).await;
        assert_eq!((status, error.code.as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, BAD_REQUEST));
        let (status, _, error) =
            refused(post_json(r#"{"count": 3, "padding": "over the sixty-four bytes of the limit"}"#)).await;
        assert_eq!((status, error.code.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE));
    }

    #[tokio::test]
    async fn unknown_routes_and_methods_are_refused_in_json_with_a_code() {
        let (status, _, error) = refused(get_("/nothing/here")).await;
        assert_eq!((status, error.code.as_str()), (StatusCode::NOT_FOUND, UNKNOWN_ROUTE));
        assert!(error.message.contains("GET /nothing/here"), "{error}");
        let delete = Request::delete("/items").body(Body::empty()).unwrap();
        let (status, allow, error) = refused(delete).await;
        assert_eq!((status, error.code.as_str()), (StatusCode::METHOD_NOT_ALLOWED, METHOD_NOT_ALLOWED));
        let allow = allow.expect("a 405 says which methods the route takes");
        assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    }

    #[tokio::test]
    async fn a_request_over_its_time_is_refused_in_json_with_a_code() {
        let (status, _, error) = refused(get_("/slow")).await;
        assert_eq!((status, error.code.as_str()), (StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT));
        assert!(error.message.contains("GET /slow") && error.message.contains("50 ms"), "{error}");
    }
}
