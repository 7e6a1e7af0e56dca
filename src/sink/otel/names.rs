//! Attribute and metric names: the OpenTelemetry semantic conventions' own constants, and the
//! documented `activity.*` names for what the conventions do not cover.

/// Re-declares the conventions' names as our own constants: the GenAI ones are marked
/// deprecated in `opentelemetry-semantic-conventions` 0.33 only because their definitions
/// moved to the GenAI conventions repository (the names on the wire are unchanged), and
/// taking the values from the crate keeps them free of typos.
macro_rules! semconv {
    ($module:ident: $($name:ident),* $(,)?) => {
        $(
            #[allow(deprecated)]
            pub(super) const $name: &str = opentelemetry_semantic_conventions::$module::$name;
        )*
    };
}

semconv!(attribute:
    ERROR_TYPE, GEN_AI_CONVERSATION_ID, GEN_AI_OPERATION_NAME, GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MODEL, GEN_AI_REQUEST_STREAM, GEN_AI_RESPONSE_FINISH_REASONS,
    GEN_AI_RESPONSE_ID, GEN_AI_RESPONSE_MODEL, GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    GEN_AI_TOKEN_TYPE, GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, GEN_AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, HTTP_RESPONSE_STATUS_CODE,
);
semconv!(metric:
    GEN_AI_CLIENT_OPERATION_DURATION, GEN_AI_CLIENT_TOKEN_USAGE, GEN_AI_SERVER_TIME_TO_FIRST_TOKEN,
);

/// Cost has no convention yet: the names of the open proposal
/// (open-telemetry/semantic-conventions-genai#443), with the amount as an exact decimal
/// string rather than the proposal's double.
pub(super) const GEN_AI_USAGE_COST_AMOUNT: &str = "gen_ai.usage.cost.amount";
pub(super) const GEN_AI_USAGE_COST_CURRENCY: &str = "gen_ai.usage.cost.currency";
pub(super) const GEN_AI_USAGE_COST_SOURCE: &str = "gen_ai.usage.cost.source";

/// The record's own fields, to join a span with its log row.
pub(super) const ACTIVITY_ID: &str = "activity.id";
pub(super) const ACTIVITY_KIND: &str = "activity.kind";
pub(super) const ACTIVITY_APP: &str = "activity.app";
pub(super) const ACTIVITY_USER_ID: &str = "activity.user_id";
pub(super) const ACTIVITY_SESSION_ID: &str = "activity.session_id";
pub(super) const ACTIVITY_MODEL: &str = "activity.model";
pub(super) const ACTIVITY_PROVIDER: &str = "activity.provider";
pub(super) const ACTIVITY_API: &str = "activity.api";
pub(super) const ACTIVITY_ENDPOINT: &str = "activity.endpoint";
pub(super) const ACTIVITY_OUTCOME: &str = "activity.outcome";
pub(super) const ACTIVITY_USAGE_SOURCE: &str = "activity.usage_source";
pub(super) const ACTIVITY_UPSTREAM: &str = "activity.upstream";
pub(super) const ACTIVITY_SERVICE_TIER: &str = "activity.service_tier";
pub(super) const ACTIVITY_COST_DETAILS: &str = "activity.cost_details";
pub(super) const ACTIVITY_USAGE_DETAILS: &str = "activity.usage_details";

/// The cost counter (no convention yet; the proposal's `gen_ai.client.operation.cost` is a
/// histogram of a double).
pub(super) const ACTIVITY_COST: &str = "activity.cost";
