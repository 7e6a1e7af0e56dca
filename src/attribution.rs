//! Who made a request, and application events that are not requests.
//!
//! The application's own auth middleware (outside the layer) inserts an [`Attribution`] into the
//! request extensions; the layer reads it. A handler may also put one (or an [`Upstream`]) into
//! the *response* extensions, which fills whatever the request side left empty — useful when
//! the proxy only learns the upstream inside the handler. Alternatively an attribution hook
//! derives it from the request (see [`ActivityLayerBuilder::attribution`](crate::ActivityLayerBuilder::attribution)).

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::record::{ActivityRecord, RecordKind};
use crate::writer::ActivityWriter;

/// Who a request or event belongs to, and the application's tags for it.
///
/// ```
/// use tower_activity::Attribution;
/// let who = Attribution::user("u_42").session("s_7").app("Chat").tag("team", "search");
/// assert_eq!(who.user_id.as_deref(), Some("u_42"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attribution {
    /// The user's id.
    pub user_id: Option<String>,
    /// The chat session's id.
    pub session_id: Option<String>,
    /// The application (the record's `app`; `"API"` when unset).
    pub app: Option<String>,
    /// Tags merged into the record's `metadata`.
    pub tags: Map<String, Value>,
}

impl Attribution {
    /// An attribution to `user_id`.
    pub fn user(user_id: impl Into<String>) -> Self {
        Attribution {
            user_id: Some(user_id.into()),
            ..Attribution::default()
        }
    }

    /// Sets the session id.
    pub fn session(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Sets the application name.
    pub fn app(mut self, app: impl Into<String>) -> Self {
        self.app = Some(app.into());
        self
    }

    /// Adds a tag to the record's `metadata`.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Writes this attribution into `record`, keeping what `record` already has.
    pub(crate) fn apply(&self, record: &mut ActivityRecord) {
        if record.user_id.is_none() {
            record.user_id.clone_from(&self.user_id);
        }
        if record.session_id.is_none() {
            record.session_id.clone_from(&self.session_id);
        }
        if let Some(app) = &self.app {
            if record.app == "API" {
                record.app = Cow::Owned(app.clone());
            }
        }
        for (k, v) in &self.tags {
            record
                .metadata
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
    }
}

/// Where a proxy sent the request (the record's `upstream`); insert it into the request or the
/// response extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream(pub String);

/// A cloneable handle that records application events (`kind: event`): logins, registrations,
/// chat sessions created. Get one from [`ActivityLayer::events`](crate::ActivityLayer::events).
///
/// Events go through the same writer as requests and never count as API requests in stats.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tower_activity::{ActivityLayer, Attribution};
/// use tower_activity::sink::MemorySink;
/// let sink = MemorySink::new();
/// let layer = ActivityLayer::new(sink.clone());
/// let events = layer.events();
/// events.record("login", "auth", "Auth", &Attribution::user("u_1"));
/// layer.writer().flush().await;
/// let rows = sink.records();
/// assert_eq!(rows[0].endpoint, "login");
/// assert_eq!(rows[0].model.as_deref(), Some("auth"));
/// # }
/// ```
#[derive(Clone)]
pub struct EventRecorder {
    writer: ActivityWriter,
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder").finish_non_exhaustive()
    }
}

impl EventRecorder {
    /// Events written through `writer` (what [`ActivityLayer::events`](crate::ActivityLayer::events)
    /// returns for the layer's own writer).
    pub fn new(writer: ActivityWriter) -> Self {
        EventRecorder { writer }
    }

    /// Records an event named `name` (stored as the record's `endpoint`, e.g. `login`,
    /// `register`, `session_created`), with `model`/`provider` as the application sees them
    /// (e.g. `auth`/`Auth`). Returns `false` when the record was dropped (counted by the writer).
    pub fn record(&self, name: &str, model: &str, provider: &str, who: &Attribution) -> bool {
        let mut record = ActivityRecord::new(RecordKind::Event);
        record.endpoint = Cow::Owned(name.to_owned());
        record.model = Some(model.to_owned());
        record.provider = Some(Cow::Owned(provider.to_owned()));
        record.latency_ms = Some(0.0);
        who.apply(&mut record);
        self.record_raw(record)
    }

    /// Records a record the application built itself (its `kind` is kept as given).
    pub fn record_raw(&self, record: ActivityRecord) -> bool {
        self.writer.record(record)
    }
}
