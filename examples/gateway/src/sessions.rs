//! Chat sessions: `POST /v1/chat/sessions`, `GET /v1/chat/sessions`, and [`attribute`], the
//! middleware that puts a request's session into its record.
//!
//! An LLM request names its session with the `session_id` query parameter or the
//! `X-Session-Id` header. The session must be the caller's: another user's (or an unknown) id
//! is a 404, so that ids cannot be probed. The parameter is removed before the request goes
//! upstream.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{SubsecRound, Utc};
use serde::Deserialize;
use serde_json::json;
use tower_activity::Attribution;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::ChatSession;

/// The header that names a request's chat session.
pub const SESSION_HEADER: &str = "x-session-id";
/// The query parameter that names a request's chat session.
pub const SESSION_PARAM: &str = "session_id";
/// The longest title a session may have, in characters.
pub const MAX_TITLE: usize = 200;

/// The body of `POST /v1/chat/sessions`.
#[derive(Debug, Deserialize)]
pub struct NewSession {
    /// The title (default `New chat`).
    #[serde(default)]
    pub title: Option<String>,
    /// The model the session is for.
    #[serde(default)]
    pub model: Option<String>,
}

/// `POST /v1/chat/sessions {title, model}` → `201 {id, title, model, created_at}`. Records a
/// `session_created` event (`app: "Chat"`, the session's model in `metadata.session_model`).
pub async fn create(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Result<Json<NewSession>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let title = body.title.as_deref().map(str::trim).unwrap_or("");
    let title = if title.is_empty() { "New chat" } else { title };
    if title.chars().count() > MAX_TITLE {
        return Err(ApiError::bad_request(format!(
            "`title` is longer than {MAX_TITLE} characters"
        ))
        .parameter("title"));
    }
    let model = body
        .model
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty());
    let session = ChatSession {
        id: uuid::Uuid::now_v7().to_string(),
        title: title.to_owned(),
        model,
        created_at: Utc::now().trunc_subsecs(6),
    };
    if let Err(e) = state
        .accounts
        .create_session(&caller.user_id, &session)
        .await
    {
        return Err(ApiError::internal("cannot create the chat session", &e));
    }
    let mut who = Attribution::user(&caller.user_id)
        .session(&session.id)
        .app("Chat");
    if let Some(model) = &session.model {
        who = who.tag("session_model", model.clone());
    }
    state.events.record("session_created", "chat", "Chat", &who);
    Ok((StatusCode::CREATED, Json(session)).into_response())
}

/// `GET /v1/chat/sessions` → `200 {"sessions": [...]}`, the caller's own, newest first.
pub async fn list(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Result<Response, ApiError> {
    match state.accounts.sessions(&caller.user_id).await {
        Ok(sessions) => Ok(Json(json!({ "sessions": sessions })).into_response()),
        Err(e) => Err(ApiError::internal("cannot list the chat sessions", &e)),
    }
}

/// The session id a request names, from the query or the header; a 400 when they disagree.
pub fn requested_session(request: &Request) -> Result<Option<String>, ApiError> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(request.uri())?;
    let from_query = pairs
        .into_iter()
        .find(|(k, _)| k == SESSION_PARAM)
        .map(|(_, v)| v.trim().to_owned());
    let from_header = match request.headers().get(SESSION_HEADER) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    ApiError::bad_request("`X-Session-Id` is not valid text")
                        .parameter("session_id")
                })?
                .trim()
                .to_owned(),
        ),
    };
    match (from_query, from_header) {
        (Some(q), Some(h)) if q != h => Err(ApiError::bad_request(
            "the `session_id` parameter and the `X-Session-Id` header name different sessions",
        )
        .parameter("session_id")),
        (q, h) => Ok(q.or(h).filter(|s| !s.is_empty())),
    }
}

/// On the LLM routes, after [`auth::admit`](crate::auth::admit): checks the session a
/// request names belongs to the caller and adds it to the [`Attribution`].
pub async fn attribute(state: &AppState, request: &mut Request) -> Result<(), ApiError> {
    let Some(session_id) = requested_session(request)? else {
        return Ok(());
    };
    let Some(caller) = request.extensions().get::<Caller>().cloned() else {
        return Err(ApiError::unauthorized("missing API key"));
    };
    match state.accounts.session(&caller.user_id, &session_id).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(ApiError::not_found(format!(
                "chat session {session_id:?} not found: create one with POST /v1/chat/sessions"
            ))
            .parameter("session_id"));
        }
        Err(e) => return Err(ApiError::internal("cannot check the chat session", &e)),
    }
    let who = request
        .extensions()
        .get::<Attribution>()
        .cloned()
        .unwrap_or_else(|| Attribution::user(&caller.user_id))
        .session(session_id);
    request.extensions_mut().insert(who);
    Ok(())
}
