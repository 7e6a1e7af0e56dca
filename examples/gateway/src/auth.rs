//! Users: `POST /auth/register`, `POST /auth/login`, and [`require_key`], the middleware that
//! admits only requests with a valid API key to `/v1/*` and `/user/*`.
//!
//! An API key is `sk-gw-` and 64 hex digits (256 random bits). Only its SHA-256 is stored: a
//! key that random cannot be guessed from its hash, so a slow password hash would add latency
//! to every request and no safety. The key is read from `Authorization: Bearer …`, or from
//! `x-api-key` (Anthropic SDKs) or `x-goog-api-key` (Gemini SDKs), so that each API's own client
//! works against the gateway unchanged.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tower_activity::Attribution;

use crate::AppState;
use crate::error::ApiError;
use crate::store::{KeyDigest, StoreError, User};

/// The prefix of every API key the gateway issues.
pub const KEY_PREFIX: &str = "sk-gw-";

/// The authenticated caller, in the request extensions of every `/v1/*` and `/user/*` request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user's id.
    pub user_id: String,
}

/// A fresh API key: the prefix and 32 random bytes in hex.
pub fn new_key() -> String {
    let mut bytes = [0u8; 32];
    // The OS random source failing is not something a request can recover from.
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// The SHA-256 of `key`: what the account stores find its user by.
pub fn key_digest(key: &str) -> KeyDigest {
    Sha256::digest(key.as_bytes()).into()
}

/// The API key the request carries, if any.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?.trim();
        let (scheme, key) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| key.trim())
            .filter(|k| !k.is_empty());
    }
    ["x-api-key", "x-goog-api-key"]
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// The key the request carries; a 401 without one.
fn required_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    presented_key(headers).ok_or_else(|| {
        ApiError::unauthorized(
            "missing API key: send `Authorization: Bearer <key>` (POST /auth/register returns one)",
        )
    })
}

/// The user the request's key belongs to; a 401 without a valid key.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<User, ApiError> {
    let key = required_key(headers)?;
    user_by_digest(state, &key_digest(key)).await
}

/// The user whose key has the SHA-256 `digest`, looked up in the store; a 401 for none.
async fn user_by_digest(state: &AppState, digest: &KeyDigest) -> Result<User, ApiError> {
    match state.accounts.user_by_key(digest).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(ApiError::unauthorized(
            "invalid API key: it is not one this gateway issued (POST /auth/register returns one)",
        )),
        Err(e) => Err(ApiError::internal("cannot check the API key", &e)),
    }
}

/// The id of the user the request's key belongs to: from the store's memory when it has the
/// key at hand ([`AccountStore::user_id_at_hand`](crate::store::AccountStore::user_id_at_hand):
/// no hex, no boxed future, no copy of the e-mail address), else as [`authenticate`] finds it.
async fn caller_id(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let digest = key_digest(required_key(headers)?);
    match state.accounts.user_id_at_hand(&digest) {
        Some(id) => Ok(id),
        None => user_by_digest(state, &digest).await.map(|user| user.id),
    }
}

/// Middleware: admits a request with a valid key, with a [`Caller`] and an [`Attribution`] to
/// the user in its extensions (the activity layer reads the latter).
pub async fn require_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    match admit(&state, &mut request).await {
        Ok(()) => next.run(request).await,
        Err(refused) => refused,
    }
}

/// What [`require_key`] does before the request goes on: the caller's key checked, the
/// [`Caller`] and an [`Attribution`] to the user put into `request`'s extensions; the `401`
/// otherwise. The LLM routes call it from [`front::llm`](crate::front::llm).
pub async fn admit(state: &AppState, request: &mut Request) -> Result<(), Response> {
    let user_id = caller_id(state, request.headers())
        .await
        .map_err(IntoResponse::into_response)?;
    let extensions = request.extensions_mut();
    extensions.insert(Attribution::user(&user_id));
    extensions.insert(Caller { user_id });
    Ok(())
}

/// Middleware on `GET /metrics`: when the gateway's
/// [`metrics_token`](crate::SharedState::metrics_token) is set, the request must carry it as
/// `Authorization: Bearer <token>` (`401` otherwise).
pub async fn require_metrics_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.metrics_token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        // Compared as hashes: the time taken says nothing about the token's bytes.
        if given.map(key_digest) != Some(key_digest(token)) {
            return ApiError::unauthorized(
                "/metrics needs `Authorization: Bearer <METRICS_TOKEN>`",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// The body of `POST /auth/register`.
#[derive(Debug, Deserialize)]
pub struct Register {
    /// The e-mail address to register.
    pub email: String,
}

/// `POST /auth/register {"email"}` → `201 {"user_id", "api_key", "credits"}` (`credits`: the
/// USD granted, a decimal string; `null` without spend control); `409` when the address is
/// taken. Records a `register` event (`app: "Auth"`, metadata `credits`).
pub async fn register(
    State(state): State<AppState>,
    body: Result<Json<Register>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let email = valid_email(&body.email)?;
    let user = User {
        id: uuid::Uuid::now_v7().to_string(),
        email,
    };
    let key = new_key();
    // Granted before the account exists: an account is never usable without its credits.
    let credits = match &state.budget {
        Some(budget) => Some(
            budget
                .grant_initial(&user.id)
                .await
                .map_err(|e| ApiError::internal("cannot grant the initial credits", &e))?,
        ),
        None => None,
    };
    match state.accounts.create_user(&user, &key_digest(&key)).await {
        Ok(()) => {}
        Err(StoreError::DuplicateEmail) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "email_taken",
                format!(
                    "an account for {} already exists; use its API key (POST /auth/login checks one)",
                    user.email
                ),
            )
            .parameter("email"));
        }
        Err(e) => return Err(ApiError::internal("cannot create the account", &e)),
    }
    let credits = credits.map(|c| c.to_string());
    state.events.record_raw(crate::budget::credits::registered(
        &user.id,
        credits.as_deref(),
    ));
    tracing::info!(user_id = %user.id, "registered");
    let body = json!({ "user_id": user.id, "api_key": key, "credits": credits });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `POST /auth/login` with the key → `200 {"user_id"}`. Records a `login` event
/// (`app: "Auth"`).
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = authenticate(&state, &headers).await?;
    state.events.record(
        "login",
        "auth",
        "Auth",
        &Attribution::user(&user.id).app("Auth"),
    );
    let body = json!({ "user_id": user.id, "email": user.email });
    Ok(Json(body).into_response())
}

/// A minimally valid e-mail address, trimmed and lowercased: `local@domain.tld`, no spaces,
/// at most 254 characters.
pub fn valid_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim().to_lowercase();
    let bad = |why: &str| {
        Err(
            ApiError::bad_request(format!("`email` {why}, e.g. ada@example.com"))
                .parameter("email"),
        )
    };
    if email.is_empty() {
        return bad("is empty: give an e-mail address");
    }
    if email.chars().count() > 254 {
        return bad("is longer than 254 characters");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain spaces or control characters");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return bad("must contain an @");
    };
    let labels_ok = domain.split('.').count() >= 2 && domain.split('.').all(|l| !l.is_empty());
    if local.is_empty() || domain.contains('@') || !labels_ok {
        return bad("must look like local@domain.tld");
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::key_hex;

    /// What the SQL stores keep for `key`.
    fn key_hash(key: &str) -> String {
        key_hex(&key_digest(key))
    }

    #[test]
    fn keys_are_random_and_only_their_hash_is_compared() {
        let (a, b) = (new_key(), new_key());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 64);
        assert_eq!(key_hash(&a), key_hash(&a));
        assert_ne!(key_hash(&a), key_hash(&b));
        assert_eq!(key_hash(&a).len(), 64);
    }

    #[test]
    fn key_hashes_are_the_sha256_in_lowercase_hex() {
        // FIPS 180-2's test vectors: what registered keys were stored as must still match.
        assert_eq!(
            key_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            key_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn emails() {
        assert_eq!(
            valid_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "a b@c.de",
            "a@b@c.de",
            "a@.de",
        ] {
            let err = valid_email(bad).unwrap_err();
            assert_eq!(err.parameter.as_deref(), Some("email"), "{bad:?}");
        }
    }

    #[test]
    fn keys_from_each_sdks_header() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("x-goog-api-key", "g".parse().unwrap());
        assert_eq!(presented_key(&h), Some("g"));
        h.insert("x-api-key", "a".parse().unwrap());
        assert_eq!(presented_key(&h), Some("a"));
        h.insert(header::AUTHORIZATION, "Bearer b".parse().unwrap());
        assert_eq!(presented_key(&h), Some("b"));
        h.insert(header::AUTHORIZATION, "Basic b".parse().unwrap());
        assert_eq!(
            presented_key(&h),
            None,
            "a non-Bearer Authorization is not a key"
        );
    }
}
