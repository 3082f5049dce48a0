//! Logs and traces. `tracing` is the API everywhere; this module decides
//! where it goes: human or JSON logs on stderr filtered by `RUST_LOG`, and,
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans exported over OTLP
//! (gRPC or HTTP) to Tempo, directly or through a collector. No endpoint,
//! no export.
//!
//! Sampling: one campaign is one trace, so ratio-sampling traces would keep
//! all of a campaign or nothing. The standard sampler (`OTEL_TRACES_SAMPLER`,
//! default parent-based always-on) decides which traces are kept; within a
//! kept trace each `send` span (one per recipient) is kept with probability
//! `COURIER_SEND_TRACE_RATIO`. A failed send also records a `send.failed`
//! span under the campaign, which its trace always keeps. Users are many
//! too: a bot update (`update`) and an imported user's registration
//! (`register`, under the import's one trace) are kept with probability
//! `COURIER_USER_TRACE_RATIO`, rather than each making a trace.
//!
//! Attributes: `tracing-opentelemetry` exports signed integers, floats and
//! booleans as such, but unsigned integers (`u16`, `u32`, `u64`, `usize`)
//! as strings (OpenTelemetry has no unsigned type), so spans record counts
//! and codes as `i64`.

use std::borrow::Cow;

use opentelemetry::trace::{
    Link, SpanKind, Status, TraceContextExt as _, TraceId, TracerProvider as _,
};
use opentelemetry::{Key, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    Sampler, SamplingDecision, SamplingResult, SdkTracerProvider, ShouldSample,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryConfig {
    /// Log filter, e.g. `info` or `courier_sender=debug,info`.
    #[arg(
        long = "log",
        env = "RUST_LOG",
        value_name = "RUST_LOG",
        default_value = "info"
    )]
    pub log_filter: String,

    /// Log format on stderr.
    #[arg(
        long = "log-format",
        env = "LOG_FORMAT",
        value_name = "LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// OTLP/gRPC endpoint for traces, e.g. http://tempo:4317. Unset: no export.
    #[arg(
        long = "otlp-endpoint",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        value_name = "OTEL_EXPORTER_OTLP_ENDPOINT"
    )]
    pub otlp_endpoint: Option<String>,

    /// OTLP transport: `grpc` (port 4317) or `http/protobuf` (port 4318).
    #[arg(
        long = "otlp-protocol",
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        value_name = "OTEL_EXPORTER_OTLP_PROTOCOL",
        default_value = "grpc"
    )]
    pub otlp_protocol: OtlpProtocol,

    /// Fraction of per-recipient `send` spans exported (0 to 1); failed
    /// sends are always exported.
    #[arg(
        long = "send-trace-ratio",
        env = "COURIER_SEND_TRACE_RATIO",
        value_name = "COURIER_SEND_TRACE_RATIO",
        default_value_t = 0.01
    )]
    pub send_trace_ratio: f64,

    /// Fraction of bot updates and of imported users' registrations traced
    /// (0 to 1): users are many, campaigns few.
    #[arg(
        long = "user-trace-ratio",
        env = "COURIER_USER_TRACE_RATIO",
        value_name = "COURIER_USER_TRACE_RATIO",
        default_value_t = 0.01
    )]
    pub user_trace_ratio: f64,

    /// Which traces to keep, as OpenTelemetry names them: always_on,
    /// always_off, traceidratio, parentbased_always_on,
    /// parentbased_always_off, parentbased_traceidratio.
    #[arg(
        long = "otel-traces-sampler",
        env = "OTEL_TRACES_SAMPLER",
        value_name = "OTEL_TRACES_SAMPLER",
        default_value = "parentbased_always_on"
    )]
    pub traces_sampler: TracesSampler,

    /// The ratio of the `*traceidratio` samplers (0 to 1).
    #[arg(
        long = "otel-traces-sampler-arg",
        env = "OTEL_TRACES_SAMPLER_ARG",
        value_name = "OTEL_TRACES_SAMPLER_ARG",
        default_value_t = 1.0
    )]
    pub traces_sampler_arg: f64,

    /// Service name on exported spans (default: the binary's name).
    #[arg(
        long = "otel-service-name",
        env = "OTEL_SERVICE_NAME",
        value_name = "OTEL_SERVICE_NAME"
    )]
    pub service_name: Option<String>,

    /// Resource attributes of exported spans, `key=value` pairs separated
    /// by commas. `service.instance.id` defaults to the hostname, which is
    /// the pod name on Kubernetes.
    #[arg(
        long = "otel-resource-attributes",
        env = "OTEL_RESOURCE_ATTRIBUTES",
        value_name = "OTEL_RESOURCE_ATTRIBUTES"
    )]
    pub resource_attributes: Option<String>,
}

/// The attribute naming one process among a service's replicas.
const SERVICE_INSTANCE_ID: &str = "service.instance.id";

impl TelemetryConfig {
    /// `OTEL_RESOURCE_ATTRIBUTES` as attributes; pairs without `=` are ignored.
    fn resource_attributes(&self) -> Vec<KeyValue> {
        self.resource_attributes
            .iter()
            .flat_map(|attributes| attributes.split(','))
            .filter_map(|pair| pair.split_once('='))
            .map(|(key, value)| KeyValue::new(key.trim().to_owned(), value.trim().to_owned()))
            .collect()
    }

    /// Who this process is, for spans and metrics alike.
    pub fn identity(&self, default_service_name: &str) -> Identity {
        let service_name = self
            .service_name
            .clone()
            .unwrap_or_else(|| default_service_name.to_owned());
        let instance_id = self
            .resource_attributes()
            .into_iter()
            .find(|attribute| attribute.key.as_str() == SERVICE_INSTANCE_ID)
            .map(|attribute| attribute.value.to_string())
            .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned());
        Identity {
            service_name,
            instance_id,
        }
    }
}

/// A service and the one process of it this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub service_name: String,
    /// `service.instance.id`.
    pub instance_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OtlpProtocol {
    Grpc,
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// The name of the per-recipient span whose export is sampled.
pub const SEND_SPAN: &str = "send";
/// The span of one bot update, sampled like a user's registration.
pub const UPDATE_SPAN: &str = "update";
/// The span of one imported user's registration, sampled.
pub const REGISTRATION_SPAN: &str = "register";

/// Makes `span` (created with `parent: None`) the root of a trace of its
/// own, linked to the span it was started from, if any. A campaign's trace
/// must not share the fate of the bot update it began in, which is sampled.
pub fn link_to_current(span: &tracing::Span) {
    span.add_link(
        tracing::Span::current()
            .context()
            .span()
            .span_context()
            .clone(),
    );
}

/// Marks `span` failed, with what went wrong, for trace views and span
/// metrics (its status becomes ERROR).
pub fn mark_error(span: &tracing::Span, description: impl Into<Cow<'static, str>>) {
    span.set_status(Status::error(description));
}

/// `OTEL_TRACES_SAMPLER`'s values that need no remote service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum TracesSampler {
    AlwaysOn,
    AlwaysOff,
    Traceidratio,
    ParentbasedAlwaysOn,
    ParentbasedAlwaysOff,
    ParentbasedTraceidratio,
}

impl TracesSampler {
    fn sampler(self, ratio: f64) -> Sampler {
        let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
        match self {
            TracesSampler::AlwaysOn => Sampler::AlwaysOn,
            TracesSampler::AlwaysOff => Sampler::AlwaysOff,
            TracesSampler::Traceidratio => Sampler::TraceIdRatioBased(ratio),
            TracesSampler::ParentbasedAlwaysOn => parent_based(Sampler::AlwaysOn),
            TracesSampler::ParentbasedAlwaysOff => parent_based(Sampler::AlwaysOff),
            TracesSampler::ParentbasedTraceidratio => {
                parent_based(Sampler::TraceIdRatioBased(ratio))
            }
        }
    }
}

/// Keeps `send` spans, bot updates and imported registrations of kept
/// traces (or as roots) at a ratio each, and decides every other span with
/// the standard sampler (`OTEL_TRACES_SAMPLER`).
#[derive(Debug, Clone)]
struct CourierSampler {
    send_ratio: f64,
    user_ratio: f64,
    standard: Sampler,
}

impl CourierSampler {
    /// The ratio a span of this name is kept at, if it is one of many.
    fn ratio_of(&self, name: &str) -> Option<f64> {
        match name {
            SEND_SPAN => Some(self.send_ratio),
            UPDATE_SPAN | REGISTRATION_SPAN => Some(self.user_ratio),
            _ => None,
        }
    }
}

impl ShouldSample for CourierSampler {
    fn should_sample(
        &self,
        parent: Option<&opentelemetry::Context>,
        trace_id: TraceId,
        name: &str,
        kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let parent_span = parent
            .filter(|cx| cx.has_active_span())
            .map(|cx| cx.span().span_context().clone());
        let Some(ratio) = self.ratio_of(name) else {
            return self
                .standard
                .should_sample(parent, trace_id, name, kind, attributes, links);
        };
        let sampled = parent_span.as_ref().is_none_or(|span| span.is_sampled())
            && rand::random::<f64>() < ratio;
        SamplingResult {
            decision: if sampled {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            },
            attributes: Vec::new(),
            trace_state: parent_span
                .map(|span| span.trace_state().clone())
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flushes spans still buffered when the service stops.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("flushing traces failed: {error}");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("RUST_LOG is not a valid filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// Installs the global subscriber and propagator. Call once, in `main`.
pub fn init(
    config: &TelemetryConfig,
    default_service_name: &'static str,
) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_new(&config.log_filter)?;
    let logs = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let provider = match &config.otlp_endpoint {
        Some(endpoint) => {
            let exporter = match config.otlp_protocol {
                OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint)
                    .build()?,
                OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_http_client(crate::otlp_http::RuntimeHttpClient::new())
                    .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
                    .build()?,
            };
            let identity = config.identity(default_service_name);
            let resource = Resource::builder()
                .with_attributes(config.resource_attributes())
                .with_service_name(identity.service_name)
                .with_attribute(KeyValue::new(
                    Key::from_static_str(SERVICE_INSTANCE_ID),
                    identity.instance_id,
                ))
                .build();
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_sampler(CourierSampler {
                        send_ratio: config.send_trace_ratio,
                        user_ratio: config.user_trace_ratio,
                        standard: config.traces_sampler.sampler(config.traces_sampler_arg),
                    })
                    .with_resource(resource)
                    .build(),
            )
        }
        None => None,
    };
    // RUST_LOG filters the logs only: traces keep every info span, whatever
    // an operator quietens on stderr.
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(default_service_name))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(traces)
        .init();
    Ok(TelemetryGuard { provider })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceState};

    fn decide(
        sampler: &CourierSampler,
        parent: Option<&opentelemetry::Context>,
        name: &str,
    ) -> SamplingDecision {
        sampler
            .should_sample(
                parent,
                TraceId::from(1u128),
                name,
                &SpanKind::Internal,
                &[],
                &[],
            )
            .decision
    }

    fn parent(sampled: bool) -> opentelemetry::Context {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let span = SpanContext::new(
            TraceId::from(1u128),
            SpanId::from(2u64),
            flags,
            true,
            TraceState::default(),
        );
        opentelemetry::Context::new().with_remote_span_context(span)
    }

    fn sampler(send_ratio: f64, standard: TracesSampler) -> CourierSampler {
        CourierSampler {
            send_ratio,
            user_ratio: send_ratio,
            standard: standard.sampler(1.0),
        }
    }

    #[test]
    fn the_standard_sampler_decides_roots_and_sends_follow_their_trace() {
        let off = sampler(1.0, TracesSampler::ParentbasedAlwaysOff);
        assert_eq!(decide(&off, None, "campaign.start"), SamplingDecision::Drop);
        assert_eq!(
            decide(&off, Some(&parent(false)), SEND_SPAN),
            SamplingDecision::Drop
        );
        assert_eq!(
            decide(&off, Some(&parent(true)), SEND_SPAN),
            SamplingDecision::RecordAndSample
        );
    }

    #[test]
    fn sends_follow_the_ratio_and_everything_else_its_parent() {
        let none = sampler(0.0, TracesSampler::ParentbasedAlwaysOn);
        let all = sampler(1.0, TracesSampler::ParentbasedAlwaysOn);
        assert_eq!(
            decide(&none, Some(&parent(true)), SEND_SPAN),
            SamplingDecision::Drop
        );
        assert_eq!(
            decide(&all, Some(&parent(true)), SEND_SPAN),
            SamplingDecision::RecordAndSample
        );
        assert_eq!(
            decide(&none, Some(&parent(true)), "send.failed"),
            SamplingDecision::RecordAndSample
        );
        assert_eq!(
            decide(&none, Some(&parent(false)), "telegram.request"),
            SamplingDecision::Drop
        );
        assert_eq!(
            decide(&none, None, "campaign.start"),
            SamplingDecision::RecordAndSample
        );
    }

    #[test]
    fn users_are_sampled_at_their_own_ratio_as_roots_and_within_an_import() {
        let users_off = CourierSampler {
            send_ratio: 1.0,
            user_ratio: 0.0,
            standard: TracesSampler::ParentbasedAlwaysOn.sampler(1.0),
        };
        for name in [UPDATE_SPAN, REGISTRATION_SPAN] {
            assert_eq!(decide(&users_off, None, name), SamplingDecision::Drop);
            assert_eq!(
                decide(&users_off, Some(&parent(true)), name),
                SamplingDecision::Drop
            );
        }
        assert_eq!(
            decide(&users_off, Some(&parent(true)), SEND_SPAN),
            SamplingDecision::RecordAndSample
        );
        let users_on = CourierSampler {
            user_ratio: 1.0,
            ..users_off
        };
        assert_eq!(
            decide(&users_on, None, UPDATE_SPAN),
            SamplingDecision::RecordAndSample
        );
        assert_eq!(
            decide(&users_on, Some(&parent(false)), REGISTRATION_SPAN),
            SamplingDecision::Drop
        );
    }

    fn config(resource_attributes: Option<&str>) -> TelemetryConfig {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            telemetry: TelemetryConfig,
        }
        let mut telemetry = Cli::parse_from(["test"]).telemetry;
        telemetry.resource_attributes = resource_attributes.map(str::to_owned);
        telemetry
    }

    #[test]
    fn the_instance_is_the_hostname_unless_the_resource_attributes_name_it() {
        let hostname = gethostname::gethostname().to_string_lossy().into_owned();
        assert_eq!(
            config(None).identity("courier-sender"),
            Identity {
                service_name: "courier-sender".into(),
                instance_id: hostname.clone(),
            }
        );
        assert_eq!(
            config(Some("deployment.environment=prod"))
                .identity("x")
                .instance_id,
            hostname
        );
        assert_eq!(
            config(Some(
                "deployment.environment=prod, service.instance.id = sender-7f9c"
            ))
            .identity("x")
            .instance_id,
            "sender-7f9c"
        );
    }
}
