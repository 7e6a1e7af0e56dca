//! OpenTelemetry export beside the database: [`OtlpConfig`] turns an
//! [`OtelSink`] on when the standard `OTEL_*` variables name a collector.
//!
//! | variable | meaning |
//! |---|---|
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | the collector's base URL (`http://127.0.0.1:4318`): setting it (or the next one) turns the export on |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` | full URLs, for a collector that splits them |
//! | `OTEL_SDK_DISABLED` | `true` keeps the export off whatever the endpoint |
//! | `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_METRIC_EXPORT_INTERVAL` | read by the exporter itself (`service.name` defaults to `gateway`) |
//!
//! Only OTLP over HTTP with protobuf is spoken: `OTEL_EXPORTER_OTLP_PROTOCOL`, when set, must
//! be `http/protobuf`. The sink is one lane of the writer's [`FanOut`](tower_activity::sink::FanOut)
//! (named `otlp`), so a collector that is down never delays nor loses the database's records.

use std::time::Duration;

use tower_activity::sink::OtelSink;

/// The resource's `service.name` unless `OTEL_SERVICE_NAME` says otherwise.
pub const SERVICE_NAME: &str = "gateway";

/// The name of the OTLP sink in the writer's `FanOut` (`sink="otlp"` in `/metrics`).
pub const SINK_NAME: &str = "otlp";

/// Where the gateway exports its records as OpenTelemetry spans and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The collector's base URL; `None` leaves it to the `OTEL_EXPORTER_OTLP_*` variables.
    pub endpoint: Option<String>,
    /// How long one export may take; `None`: `OTEL_EXPORTER_OTLP_TIMEOUT`, else 10 s.
    pub timeout: Option<Duration>,
}

impl OtlpConfig {
    /// An export to the collector at `base_url` (tests; the gateway reads the variables).
    pub fn endpoint(base_url: impl Into<String>) -> Self {
        OtlpConfig {
            endpoint: Some(base_url.into()),
            timeout: None,
        }
    }

    /// `Some` when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set
    /// and `OTEL_SDK_DISABLED` is not `true`; `Err` names a variable the gateway cannot honour.
    pub fn from_env() -> Result<Option<Self>, String> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any source of variables.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = set("OTEL_SDK_DISABLED") {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" => return Ok(None),
                "false" => {}
                _ => {
                    return Err(format!(
                        "OTEL_SDK_DISABLED must be true or false, got {v:?}"
                    ));
                }
            }
        }
        if let Some(v) = set("OTEL_EXPORTER_OTLP_PROTOCOL") {
            if v.trim() != "http/protobuf" {
                return Err(format!(
                    "OTEL_EXPORTER_OTLP_PROTOCOL={v:?} is not supported: the gateway exports OTLP over HTTP with protobuf (http/protobuf, port 4318)"
                ));
            }
        }
        let on = set("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
        Ok(on.then(OtlpConfig::default))
    }

    /// The sink (inside the Tokio runtime). `Err` is a one-line cause naming the setting.
    pub fn build(&self) -> Result<OtelSink, String> {
        let mut builder = OtelSink::builder().service_name(SERVICE_NAME);
        if let Some(endpoint) = &self.endpoint {
            builder = builder.endpoint(endpoint.clone());
        }
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        builder.build().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_endpoint_variables_turn_the_export_on() {
        assert_eq!(OtlpConfig::from_vars(vars(&[])), Ok(None));
        assert_eq!(
            OtlpConfig::from_vars(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])),
            Ok(None),
            "empty is unset"
        );
        for name in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ] {
            let on = [(name, "http://collector:4318")];
            assert_eq!(
                OtlpConfig::from_vars(vars(&on)),
                Ok(Some(OtlpConfig::default())),
                "{name}"
            );
        }
        let off = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_SDK_DISABLED", "TRUE"),
        ];
        assert_eq!(OtlpConfig::from_vars(vars(&off)), Ok(None));
    }

    #[test]
    fn unsupported_settings_are_named() {
        let grpc = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ];
        let e = OtlpConfig::from_vars(vars(&grpc)).unwrap_err();
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && e.contains("grpc"),
            "{e}"
        );
        let e = OtlpConfig::from_vars(vars(&[("OTEL_SDK_DISABLED", "yes")])).unwrap_err();
        assert!(e.contains("OTEL_SDK_DISABLED") && e.contains("yes"), "{e}");
    }
}
