//! The gateway's log on standard output, in a form an operator can ship.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `LOG_FORMAT` | `text` | `text`: one human-readable line per event; `json`: one JSON object per line (`timestamp`, `level`, `target`, `message` and the event's fields), for Loki, Elasticsearch, Datadog … |
//! | `RUST_LOG` | `info` | which events (`tracing_subscriber::EnvFilter` syntax: `warn`, `gateway=debug,info` …) |
//! | `NO_COLOR` | unset | set: no colours even on a terminal |
//!
//! Colours (ANSI escape sequences) are used only when standard output is a terminal: a log
//! redirected to a file or a pipe is plain text.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// How each log event is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Reads `LOG_FORMAT`; `Err` is a one-line message naming the variable and its values.
    pub fn from_env() -> Result<Self, String> {
        Self::parse(std::env::var("LOG_FORMAT").ok().as_deref())
    }

    /// The format a `LOG_FORMAT` value names (unset or empty: text).
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim) {
            None | Some("") => Ok(LogFormat::Text),
            Some(v) if v.eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
            Some(v) if v.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
            Some(v) => Err(format!("LOG_FORMAT must be `text` or `json`, got {v:?}")),
        }
    }
}

/// Whether to colour the log: only text, only on a terminal, and not when `NO_COLOR` is set
/// (to anything but the empty string, as <https://no-color.org> asks).
pub fn colours(format: LogFormat, terminal: bool, no_color: Option<&str>) -> bool {
    format == LogFormat::Text && terminal && no_color.is_none_or(str::is_empty)
}

/// Installs the global subscriber writing to standard output.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let no_color = std::env::var("NO_COLOR").ok();
    let ansi = colours(format, std::io::stdout().is_terminal(), no_color.as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(LogFormat::parse(None), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some(" ")), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("JSON")), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse(Some("text")), Ok(LogFormat::Text));
        let e = LogFormat::parse(Some("xml")).unwrap_err();
        assert!(e.contains("LOG_FORMAT") && e.contains("xml"), "{e}");
    }

    #[test]
    fn colours_only_for_text_on_a_terminal() {
        assert!(colours(LogFormat::Text, true, None));
        assert!(colours(LogFormat::Text, true, Some("")));
        assert!(!colours(LogFormat::Text, false, None), "a pipe or a file");
        assert!(!colours(LogFormat::Text, true, Some("1")), "NO_COLOR");
        assert!(!colours(LogFormat::Json, true, None));
    }
}
