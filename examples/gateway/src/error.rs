//! [`ApiError`]: every error the gateway itself answers, as JSON in the OpenAI error shape.
//!
//! `{"error": {"message": "…", "type": "…"}}`, plus `"parameter"` when one query parameter or
//! body field is at fault. Upstream errors are not wrapped: they pass through as the provider
//! sent them.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// An error answer: a status, a machine-readable `type`, a message a person can act on.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `error.type` (`unauthorized`, `invalid_request`, `not_found` …).
    pub kind: &'static str,
    /// What went wrong and what to do about it.
    pub message: String,
    /// The parameter or field at fault, if one is.
    pub parameter: Option<String>,
}

impl ApiError {
    /// An error with `status`, `kind` and `message`.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            parameter: None,
        }
    }

    /// `400 invalid_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// `401 unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// `404 not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// `500 internal_error` for a failure the client cannot fix. The cause is logged here and
    /// not sent: it may name tables, hosts or credentials.
    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!("{context}: {cause}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("{context}; the gateway's log has the cause"),
        )
    }

    /// Names the parameter or field at fault.
    pub fn parameter(mut self, name: impl Into<String>) -> Self {
        self.parameter = Some(name.into());
        self
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("message".into(), self.message.clone().into());
        error.insert("type".into(), self.kind.into());
        if let Some(p) = &self.parameter {
            error.insert("parameter".into(), p.clone().into());
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let message = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                "the body must be JSON with `Content-Type: application/json`".to_owned()
            }
            _ => format!(
                "the body is not the JSON this route expects: {}",
                rejection.body_text()
            ),
        };
        let kind = if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            "unsupported_media_type"
        } else {
            "invalid_request"
        };
        ApiError::new(status, kind, message)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(format!("malformed query string: {}", rejection.body_text()))
    }
}

/// Any route the gateway does not serve.
pub async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route for {method} {}; see the README for the gateway's routes",
        uri.path()
    ))
}

/// A route that exists, asked with the wrong method.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not accept {method}", uri.path()),
    )
}

/// An error in `api`'s own shape, for clients of that API (its SDK parses it):
/// OpenAI `{"error": {"message", "type", "param", "code"}}`, Anthropic `{"type": "error",
/// "error": {"type", "message"}}`, Gemini `{"error": {"code", "message", "status"}}`.
pub fn api_error(
    api: tower_activity::LlmApi,
    status: StatusCode,
    code: &'static str,
    message: String,
) -> Response {
    use tower_activity::LlmApi;
    let body = match api {
        LlmApi::AnthropicMessages => json!({
            "type": "error",
            "error": { "type": anthropic_type(status), "message": message },
        }),
        LlmApi::GeminiGenerate => json!({
            "error": {
                "code": status.as_u16(),
                "message": message,
                "status": gemini_status(status),
            },
        }),
        _ => json!({
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": if code == "model_not_found" { Value::from("model") } else { Value::Null },
                "code": code,
            },
        }),
    };
    (status, Json(body)).into_response()
}

/// Anthropic's error `type` for `status`.
fn anthropic_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        502 | 503 => "api_error",
        _ => "invalid_request_error",
    }
}

/// Google's canonical status for `status`.
fn gemini_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "NOT_FOUND",
        408 | 504 => "DEADLINE_EXCEEDED",
        429 => "RESOURCE_EXHAUSTED",
        502 | 503 => "UNAVAILABLE",
        _ => "INVALID_ARGUMENT",
    }
}
