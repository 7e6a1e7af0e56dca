//! The four wire formats as the integration tests send them: one prompt of known size (13
//! input tokens by the mock upstream's rule), each API's path, model and request body, and
//! the provider's finish reasons. The mock's own tests and the gateway's use it.

use serde_json::{Value, json};

pub const SYSTEM: &str = "Be brief.";
pub const PROMPT: &str = "Count the tokens of this prompt, please.";
pub const INPUT: u64 = 13;
pub const OUTPUT: u64 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Chat,
    Responses,
    Anthropic,
    Gemini,
}

pub use Api::*;

pub const ALL: [Api; 4] = [Chat, Responses, Anthropic, Gemini];

impl Api {
    pub fn model(self) -> &'static str {
        match self {
            Chat => "gpt-4o-mini",
            Responses => "gpt-4o",
            Anthropic => "claude-sonnet-4-5",
            Gemini => "gemini-2.5-flash",
        }
    }

    pub fn api(self) -> &'static str {
        match self {
            Chat => "openai.chat",
            Responses => "openai.responses",
            Anthropic => "anthropic.messages",
            Gemini => "gemini.generate",
        }
    }

    pub fn endpoint(self, stream: bool) -> String {
        match (self, stream) {
            (Chat, _) => "/v1/chat/completions".into(),
            (Responses, _) => "/v1/responses".into(),
            (Anthropic, _) => "/v1/messages".into(),
            (Gemini, false) => format!("/v1beta/models/{}:generateContent", self.model()),
            (Gemini, true) => format!("/v1beta/models/{}:streamGenerateContent", self.model()),
        }
    }

    pub fn path(self, stream: bool) -> String {
        match (self, stream) {
            (Gemini, true) => format!("{}?alt=sse", self.endpoint(true)),
            _ => self.endpoint(stream),
        }
    }

    /// The test prompt, streamed or not, with a token limit if given. Chat streams do not ask
    /// for usage: the gateway's layer does.
    pub fn body(self, stream: bool, limit: Option<u64>) -> Value {
        let mut body = match self {
            Chat => json!({"model": self.model(), "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": PROMPT},
            ]}),
            Responses => json!({"model": self.model(), "instructions": SYSTEM, "input": PROMPT}),
            Anthropic => json!({"model": self.model(), "max_tokens": 1024, "system": SYSTEM,
                "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}]}),
            Gemini => json!({
                "systemInstruction": {"parts": [{"text": SYSTEM}]},
                "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
            }),
        };
        if stream && self != Gemini {
            body["stream"] = json!(true);
        }
        if let Some(limit) = limit {
            match self {
                Chat | Anthropic => body["max_tokens"] = json!(limit),
                Responses => body["max_output_tokens"] = json!(limit),
                Gemini => body["generationConfig"] = json!({"maxOutputTokens": limit}),
            }
        }
        body
    }

    /// What the provider says at a natural end, and at the token limit.
    pub fn native_finish(self, cut: bool) -> &'static str {
        match (self, cut) {
            (Chat, false) => "stop",
            (Chat, true) => "length",
            (Responses, false) => "completed",
            (Responses, true) => "max_output_tokens",
            (Anthropic, false) => "end_turn",
            (Anthropic, true) => "max_tokens",
            (Gemini, false) => "STOP",
            (Gemini, true) => "MAX_TOKENS",
        }
    }
}
