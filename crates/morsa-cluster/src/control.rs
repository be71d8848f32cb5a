//! The supervisor's control API on loopback, and its client: `morsa cluster down`, `kill`,
//! `stop` and `start` ask the process that owns the cluster's children to act on them.
//!
//! Every request must carry `Authorization: Bearer TOKEN`, the token the supervisor writes to
//! [`TOKEN_FILE`] in the cluster's directory (mode 0600) when it starts, and no `Origin` header
//! (a web page can post to a loopback port without a preflight, never without `Origin`);
//! others get 403.
//!
//! Answers are JSON; errors are `{"error": "…"}` with 404 for an unknown node or route, 409 for
//! a node in the wrong state or a cluster already shut down, 403 for a refused caller, 400 for a
//! malformed index or body, 405 for a method a route does not take, 500 otherwise.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use morsa_node::AdminToken;

use crate::cluster::Cluster;
use crate::error::ClusterError;
use crate::link_shape::LinkShape;
use crate::state::ClusterState;

/// The routes.
pub mod routes {
    /// `GET`: the [`crate::ClusterState`].
    pub const STATE: &str = "/v1/cluster";
    /// `POST`: stop every process cleanly, then the supervisor exits.
    pub const DOWN: &str = "/v1/down";
    /// `POST`: SIGKILL a node.
    pub const KILL: &str = "/v1/nodes/{index}/kill";
    /// `POST`: SIGTERM a node.
    pub const STOP: &str = "/v1/nodes/{index}/stop";
    /// `POST`: restart a stopped node and wait until it is ready.
    pub const START: &str = "/v1/nodes/{index}/start";
    /// `POST` a [`crate::link_shape::LinkShape`]: change the delay and bandwidth of a node's shaped
    /// link (`morsa cluster slow`).
    pub const LINK: &str = "/v1/nodes/{index}/link";
    /// `POST`: SIGKILL a coordinator replica.
    pub const COORDINATOR_KILL: &str = "/v1/coordinators/{index}/kill";
    /// `POST`: SIGTERM a coordinator replica.
    pub const COORDINATOR_STOP: &str = "/v1/coordinators/{index}/stop";
    /// `POST`: restart a stopped coordinator replica.
    pub const COORDINATOR_START: &str = "/v1/coordinators/{index}/start";
    /// `POST` an [`super::AddNode`]: register, stake and start a new node, wait until it is
    /// ready (`morsa cluster add-node`).
    pub const ADD_NODE: &str = "/v1/nodes";
}

/// The body of [`routes::ADD_NODE`].
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct AddNode {
    /// Its zone (none: a zone of its own).
    pub zone: Option<String>,
}

/// Name of the control token's file in the cluster's directory.
pub const TOKEN_FILE: &str = "control.token";

/// The supervisor's shared state: the cluster, the token callers must send, and the signal
/// that `down` was asked.
#[derive(Debug, Clone)]
pub struct Control {
    cluster: Arc<Mutex<Cluster>>,
    token: AdminToken,
    down: Arc<Notify>,
}

impl Control {
    /// Controls `cluster`, whose directory is `dir`: writes a new token to [`TOKEN_FILE`] there.
    pub fn new(cluster: Arc<Mutex<Cluster>>, dir: &std::path::Path) -> std::io::Result<Self> {
        let token = AdminToken::create_at(&dir.join(TOKEN_FILE))?;
        Ok(Self { cluster, token, down: Arc::new(Notify::new()) })
    }

    /// Resolves once a `down` request has stopped the cluster (also if that happened before).
    pub async fn down_requested(&self) {
        self.down.notified().await;
    }

    /// Runs `operation` on the cluster on a blocking thread.
    async fn with_cluster<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&mut Cluster) -> Result<T, ClusterError> + Send + 'static,
    ) -> Result<T, ControlFailure> {
        let cluster = Arc::clone(&self.cluster);
        tokio::task::spawn_blocking(move || {
            // A panic in an earlier operation leaves the processes as they were: go on.
            let mut cluster = cluster.lock().unwrap_or_else(PoisonError::into_inner);
            operation(&mut cluster)
        })
        .await
        .map_err(|error| ControlFailure(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?
        .map_err(ControlFailure::from)
    }
}

/// The control API's router.
pub fn router(control: Control) -> Router {
    Router::new()
        .route(routes::STATE, get(state))
        .route(routes::DOWN, post(down))
        .route(routes::KILL, post(kill))
        .route(routes::STOP, post(stop))
        .route(routes::START, post(start))
        .route(routes::LINK, post(shape_link))
        .route(routes::COORDINATOR_KILL, post(kill_coordinator))
        .route(routes::COORDINATOR_STOP, post(stop_coordinator))
        .route(routes::COORDINATOR_START, post(start_coordinator))
        .route(routes::ADD_NODE, post(add_node))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(control.clone(), authorize))
        .with_state(control)
}

/// Refuses requests without the token or with an `Origin` header.
async fn authorize(
    State(control): State<Control>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match control.token.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => ControlFailure(StatusCode::FORBIDDEN, refusal.to_string()).into_response(),
    }
}

/// The body of every successful `POST`, and of errors (`error` set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlAnswer {
    /// What was done, or what went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<String>,
}

struct ControlFailure(StatusCode, String);

impl From<ClusterError> for ControlFailure {
    fn from(error: ClusterError) -> Self {
        let status = match error {
            ClusterError::NoSuchNode { .. } | ClusterError::NoSuchCoordinator { .. } => StatusCode::NOT_FOUND,
            ClusterError::NotRunning(_)
            | ClusterError::AlreadyRunning(_)
            | ClusterError::CoordinatorNotRunning(_)
            | ClusterError::CoordinatorRunning(_)
            | ClusterError::NoLink(_)
            | ClusterError::ShutDown => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self(status, error.to_string())
    }
}

impl IntoResponse for ControlFailure {
    fn into_response(self) -> Response {
        (self.0, Json(ControlAnswer { error: Some(self.1), done: None })).into_response()
    }
}

/// axum's `Path`, refused in the API's JSON (`error`: axum's explanation, with its status)
/// instead of axum's plain text.
struct ControlPath<T>(T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ControlPath<T> {
    type Rejection = ControlFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ControlFailure> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(ControlFailure(rejection.status(), rejection.body_text())),
        }
    }
}

/// axum's `Json`, refused in the API's JSON as [`ControlPath`] is.
struct ControlJson<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ControlJson<T> {
    type Rejection = ControlFailure;

    async fn from_request(request: Request, state: &S) -> Result<Self, ControlFailure> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ControlFailure(rejection.status(), rejection.body_text())),
        }
    }
}

async fn unknown_route(method: Method, uri: Uri) -> ControlFailure {
    ControlFailure(StatusCode::NOT_FOUND, format!("no route for {method} {}: check the URL", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ControlFailure {
    ControlFailure(StatusCode::METHOD_NOT_ALLOWED, format!("{} does not take {method}", uri.path()))
}

fn done(what: String) -> Json<ControlAnswer> {
    Json(ControlAnswer { error: None, done: Some(what) })
}

async fn state(State(control): State<Control>) -> Result<Json<ClusterState>, ControlFailure> {
    control.with_cluster(|cluster| Ok(cluster.state())).await.map(Json)
}

async fn down(State(control): State<Control>) -> Result<Json<ControlAnswer>, ControlFailure> {
    let outcome = control.with_cluster(Cluster::shutdown).await;
    // Stopped either way (shutdown kills what does not stop): the supervisor may exit.
    control.down.notify_one();
    outcome.map(|()| done("every process stopped cleanly".into()))
}

async fn kill(
    State(control): State<Control>,
    ControlPath(index): ControlPath<usize>,
) -> Result<Json<ControlAnswer>, ControlFailure> {
    control.with_cluster(move |cluster| cluster.kill(index)).await?;
    Ok(done(format!("node {index} killed (SIGKILL)")))
}

async fn stop(
    State(control): State<Control>,
    ControlPath(index): ControlPath<usize>,
) -> Result<Json<ControlAnswer>, ControlFailure> {
    control.with_cluster(move |cluster| cluster.stop(index)).await?;
    Ok(done(format!("node {index} stopped (SIGTERM)")))
}

async fn start(
    State(control): State<Control>,
    ControlPath(index): ControlPath<usize>,
) -> Result<Json<ControlAnswer>, ControlFailure> {
    let url = control
        .with_cluster(move |cluster| {
            cluster.start(index)?;
            Ok(cluster.nodes()[index].url.clone())
        })
        .await?;
    Ok(done(format!("node {index} is running again on {url}")))
}

async fn add_node(
    State(control): State<Control>,
    ControlJson(request): ControlJson<AddNode>,
) -> Result<Json<ControlAnswer>, ControlFailure> {
    let (index, url, node_id) = control
        .with_cluster(move |cluster| {
            let index = cluster.add_node(request.zone.as_deref())?;
            let node = &cluster.nodes()[index];
            Ok((index, node.url.clone(), node.node_id))
        })
        .await?;
    Ok(done(format!(
        "node {index} ({node_id}) is registered, staked and running on {url}; it joins the committee at the next selection"
    )))
}

async fn shape_link(
    State(control): State<Control>,
    ControlPath(index): ControlPath<usize>,
    ControlJson(shape): ControlJson<LinkShape>,
) -> Result<Json<ControlAnswer>, ControlFailure> {
    control.with_cluster(move |cluster| cluster.shape_link(index, shape)).await?;
    Ok(done(format!("node {index}'s link: {shape}")))
}

async fn kill_coordinator(
    State(control): State<Control>,
    ControlPath(index): ControlPath<usize>,
) -> Result<Json<ControlAnswer>, ControlFailure> {
    control.with_cluster(move |cluster| cluster.kill_coordinator(index)).await?;
    Ok(done(format!("coordinator replica {index} killed (SIGKILL)")))
}

async fn stop_coordinator(
    State(control): State<Control>,
    ControlPath(index): ControlPath<usize>,
) -> Result<Json<ControlAnswer>, ControlFailure> {
    control.with_cluster(move |cluster| cluster.stop_coordinator(index)).await?;
    Ok(done(format!("coordinator replica {index} stopped (SIGTERM)")))
}

async fn start_coordinator(
    State(control): State<Control>,
    ControlPath(index): ControlPath<usize>,
) -> Result<Json<ControlAnswer>, ControlFailure> {
    let url = control
        .with_cluster(move |cluster| {
            cluster.restart_coordinator(index)?;
            Ok(cluster.coordinator_urls()[index].clone())
        })
        .await?;
    Ok(done(format!("coordinator replica {index} is running again on {url}")))
}

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The supervisor could not be reached (it is probably gone).
    #[error("the cluster's supervisor at {url} does not answer: {reason}")]
    Unreachable {
        /// Its control URL.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The supervisor refused or failed the request.
    #[error("{0}")]
    Refused(String),
}

/// Longest a control request may take: a start waits for the node to be ready, a shutdown
/// for every process to stop.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(300);

/// A client of a supervisor's control API.
#[derive(Debug, Clone)]
pub struct ControlClient {
    url: String,
    token: AdminToken,
    http: reqwest::Client,
}

impl ControlClient {
    /// A client of the control API at `url` (as `cluster.json` records it) sending `token`.
    pub fn new(url: &str, token: AdminToken) -> Result<Self, ControlError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(CONTROL_TIMEOUT)
            .build()
            .map_err(|error| ControlError::Unreachable { url: url.into(), reason: error.to_string() })?;
        Ok(Self { url: url.trim_end_matches('/').to_string(), token, http })
    }

    /// A client of the supervisor of the cluster in `dir`, at `url`, with the token it wrote
    /// there.
    pub fn for_cluster(dir: &std::path::Path, url: &str) -> Result<Self, ControlError> {
        let path = dir.join(TOKEN_FILE);
        let token = AdminToken::read(&path).map_err(|error| {
            ControlError::Refused(format!("cannot read the control token {}: {error}", path.display()))
        })?;
        Self::new(url, token)
    }

    /// Stops the cluster cleanly; the supervisor then exits.
    pub async fn down(&self) -> Result<String, ControlError> {
        self.post(routes::DOWN.to_string()).await
    }

    /// SIGKILLs node `index`.
    pub async fn kill(&self, index: usize) -> Result<String, ControlError> {
        self.post(node_route(routes::KILL, index)).await
    }

    /// SIGTERMs node `index`.
    pub async fn stop(&self, index: usize) -> Result<String, ControlError> {
        self.post(node_route(routes::STOP, index)).await
    }

    /// Restarts node `index` and waits until it is ready.
    pub async fn start(&self, index: usize) -> Result<String, ControlError> {
        self.post(node_route(routes::START, index)).await
    }

    /// Changes the shape of node `index`'s link.
    pub async fn shape_link(&self, index: usize, shape: LinkShape) -> Result<String, ControlError> {
        let request = self
            .http
            .post(format!("{}{}", self.url, node_route(routes::LINK, index)))
            .bearer_auth(self.token.as_str())
            .json(&shape);
        self.answer(request).await
    }

    /// SIGKILLs coordinator replica `index`.
    pub async fn kill_coordinator(&self, index: usize) -> Result<String, ControlError> {
        self.post(node_route(routes::COORDINATOR_KILL, index)).await
    }

    /// SIGTERMs coordinator replica `index`.
    pub async fn stop_coordinator(&self, index: usize) -> Result<String, ControlError> {
        self.post(node_route(routes::COORDINATOR_STOP, index)).await
    }

    /// Restarts coordinator replica `index`.
    pub async fn start_coordinator(&self, index: usize) -> Result<String, ControlError> {
        self.post(node_route(routes::COORDINATOR_START, index)).await
    }

    /// Adds a node in `zone`: registered, staked and started; waits until it is ready.
    pub async fn add_node(&self, zone: Option<String>) -> Result<String, ControlError> {
        let request = self
            .http
            .post(format!("{}{}", self.url, routes::ADD_NODE))
            .bearer_auth(self.token.as_str())
            .json(&AddNode { zone });
        self.answer(request).await
    }

    /// The cluster's state as the supervisor sees it.
    pub async fn state(&self) -> Result<ClusterState, ControlError> {
        let response = self
            .http
            .get(format!("{}{}", self.url, routes::STATE))
            .bearer_auth(self.token.as_str())
            .send()
            .await;
        let response = response.map_err(|error| self.unreachable(&error))?;
        if !response.status().is_success() {
            return Err(ControlError::Refused(format!("the supervisor answered {}", response.status())));
        }
        response.json().await.map_err(|error| ControlError::Refused(format!("a bad answer: {error}")))
    }

    async fn post(&self, path: String) -> Result<String, ControlError> {
        self.answer(self.http.post(format!("{}{path}", self.url)).bearer_auth(self.token.as_str())).await
    }

    async fn answer(&self, request: reqwest::RequestBuilder) -> Result<String, ControlError> {
        let response = request.send().await;
        let response = response.map_err(|error| self.unreachable(&error))?;
        let status = response.status();
        let answer: ControlAnswer = response
            .json()
            .await
            .map_err(|error| ControlError::Refused(format!("the supervisor answered {status}: {error}")))?;
        match (answer.error, answer.done) {
            (None, Some(done)) if status.is_success() => Ok(done),
            (Some(error), _) => Err(ControlError::Refused(error)),
            _ => Err(ControlError::Refused(format!("the supervisor answered {status}"))),
        }
    }

    fn unreachable(&self, error: &reqwest::Error) -> ControlError {
        if error.is_timeout() {
            return ControlError::Refused(format!(
                "the supervisor did not answer within {CONTROL_TIMEOUT:?}"
            ));
        }
        ControlError::Unreachable { url: self.url.clone(), reason: error.to_string() }
    }
}

fn node_route(route: &str, index: usize) -> String {
    route.replace("{index}", &index.to_string())
}
