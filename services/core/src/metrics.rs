//! Every metric courier exposes, declared once: its name, its HELP text,
//! its labels and the label values it is known to take, so a counter reads
//! 0 before its first increment (`rate()` then sees the first 429 too).
//! Each service asks for its group ([`bot`], [`sender`], ...) at start and
//! records through it; latencies go into histograms whose exemplars carry
//! the trace id of the current span when its trace is sampled.
//!
//! `/metrics` is rendered here: OpenMetrics (the one text format with
//! exemplars) when the scraper asks for it, as Prometheus does, and
//! Prometheus' text format 0.0.4 otherwise (curl, `promtool check
//! metrics`). `docs/decisions/0009-metrics-with-exemplars.md` says why
//! `prometheus-client` and not `metrics-exporter-prometheus`.

use std::borrow::Cow;
use std::sync::{LazyLock, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use opentelemetry::trace::TraceContextExt as _;
use prometheus_client::encoding::{EncodeLabelSet, prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Metric, Registry, Unit};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// A gauge holding any number (a rate limit, a count).
pub type Gauge = gauge::Gauge<f64, std::sync::atomic::AtomicU64>;
/// A counter of seconds (a float).
pub type SecondsCounter = Counter<f64, std::sync::atomic::AtomicU64>;

/// The metrics of this process; each group registers itself once.
static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

fn registry() -> MutexGuard<'static, Registry> {
    // Registering and encoding cannot leave the registry half-changed.
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

type LabelSet<const N: usize> = [(&'static str, Cow<'static, str>); N];

/// A metric per combination of the values of `N` labels.
pub struct Labelled<M, const N: usize, C = fn() -> M> {
    keys: [&'static str; N],
    family: Family<LabelSet<N>, M, C>,
}

impl<M: Clone, const N: usize, C: MetricConstructor<M>> Labelled<M, N, C> {
    /// The metric of these label values (in the order the labels were
    /// declared), created at 0 if they are new.
    pub fn get<V: Into<Cow<'static, str>>>(&self, values: [V; N]) -> M {
        self.family.get_or_create_owned(&self.label_set(values))
    }

    fn label_set<V: Into<Cow<'static, str>>>(&self, values: [V; N]) -> LabelSet<N> {
        let mut values = values.into_iter();
        self.keys
            .map(|key| (key, values.next().map(Into::into).unwrap_or_default()))
    }
}

/// The trace a latency was measured in: the exemplar of its bucket.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceExemplar {
    trace_id: String,
}

impl TraceExemplar {
    /// The current span's trace, if it is sampled (kept and exported):
    /// an exemplar must lead to a trace that exists.
    pub fn current() -> Option<TraceExemplar> {
        let context = tracing::Span::current().context();
        let span = context.span();
        let span = span.span_context();
        (span.is_valid() && span.is_sampled()).then(|| TraceExemplar {
            trace_id: span.trace_id().to_string(),
        })
    }
}

/// Bucket bounds (seconds) of a latency histogram.
#[derive(Clone, Copy)]
pub struct Buckets(&'static [f64]);

impl MetricConstructor<HistogramWithExemplars<TraceExemplar>> for Buckets {
    fn new_metric(&self) -> HistogramWithExemplars<TraceExemplar> {
        HistogramWithExemplars::new(self.0.iter().copied())
    }
}

/// Requests and handlers: milliseconds to the 20 s a send may take.
const REQUEST_SECONDS: Buckets = Buckets(&[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
]);
/// A batch applied or fanned out: a millisecond to ten seconds.
const BATCH_SECONDS: Buckets = Buckets(&[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
]);
/// A recipient waiting for its turn: a large campaign on the free lane
/// takes hours.
const RECIPIENT_SECONDS: Buckets = Buckets(&[
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
]);

/// Latencies by `N` labels, in seconds, with exemplars.
pub type Latency<const N: usize> = Labelled<HistogramWithExemplars<TraceExemplar>, N, Buckets>;

impl<const N: usize> Latency<N> {
    /// Records `elapsed` under these label values; the current span's trace
    /// becomes the bucket's exemplar when it is sampled.
    pub fn observe(&self, values: [&'static str; N], elapsed: Duration) {
        self.get(values).observe(
            elapsed.as_secs_f64(),
            TraceExemplar::current(),
            Some(SystemTime::now()),
        );
    }
}

/// Registers a group's metrics, each with its HELP text.
struct Declare<'a>(&'a mut Registry);

impl Declare<'_> {
    fn register(&mut self, name: &str, help: &str, metric: impl Metric) {
        self.0.register(name, help, metric);
    }

    /// A counter; `name` without `_total`, which the exposition adds.
    fn counter(&mut self, name: &str, help: &str) -> Counter {
        let counter = Counter::default();
        self.register(name, help, counter.clone());
        counter
    }

    /// Counters by labels `keys`, each of the `known` combinations at 0.
    fn counters<M, const N: usize>(
        &mut self,
        name: &str,
        help: &str,
        keys: [&'static str; N],
        known: &[[&'static str; N]],
    ) -> Labelled<M, N>
    where
        M: Clone + Default,
        Family<LabelSet<N>, M>: Metric,
    {
        let counters = Labelled {
            keys,
            family: Family::default(),
        };
        for values in known {
            counters.get(*values);
        }
        self.register(name, help, counters.family.clone());
        counters
    }

    fn gauge(&mut self, name: &str, help: &str) -> Gauge {
        let gauge = Gauge::default();
        self.register(name, help, gauge.clone());
        gauge
    }

    /// Gauges by labels `keys`, each of the `known` combinations at 0.
    fn gauges<const N: usize>(
        &mut self,
        name: &str,
        help: &str,
        keys: [&'static str; N],
        known: &[[&'static str; N]],
    ) -> Labelled<Gauge, N> {
        let gauges = Labelled {
            keys,
            family: Family::default(),
        };
        for values in known {
            gauges.get(*values);
        }
        self.register(name, help, gauges.family.clone());
        gauges
    }

    /// A latency histogram; `name` without `_seconds`, which the exposition
    /// adds. The `known` combinations of labels show (empty) from the start.
    fn latency<const N: usize>(
        &mut self,
        name: &str,
        help: &str,
        keys: [&'static str; N],
        known: &[[&'static str; N]],
        buckets: Buckets,
    ) -> Latency<N> {
        let latency = Labelled {
            keys,
            family: Family::new_with_constructor(buckets),
        };
        for values in known {
            latency.get(*values);
        }
        self.0
            .register_with_unit(name, help, Unit::Seconds, latency.family.clone());
        latency
    }
}

/// Declares a group of metrics into the process's registry.
fn declare<T>(group: impl FnOnce(&mut Declare) -> T) -> T {
    group(&mut Declare(&mut registry()))
}

/// One value per known label, in declaration order.
fn each(values: &[&'static str]) -> Vec<[&'static str; 1]> {
    values.iter().map(|value| [*value]).collect()
}

/// What every service says about itself.
pub struct ProcessMetrics {
    /// When the process started (a change is a restart).
    pub start_time: Gauge,
}

/// Identifies the process (`target_info`, as OpenTelemetry maps resource
/// attributes to Prometheus) and records its start; once, at start-up.
pub fn process(service_name: &str, instance_id: &str) -> &'static ProcessMetrics {
    static GROUP: OnceLock<ProcessMetrics> = OnceLock::new();
    GROUP.get_or_init(|| {
        declare(|d| {
            d.register(
                "target",
                "The service and its instance (service.instance.id: the pod name on Kubernetes, the hostname otherwise)",
                Info::new([
                    ("service_name", service_name.to_owned()),
                    ("service_instance_id", instance_id.to_owned()),
                ]),
            );
            let start_time = d.gauge(
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
            );
            let since_epoch = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            start_time.set(since_epoch.as_secs_f64());
            ProcessMetrics { start_time }
        })
    })
}

/// The bot's RED metrics, by update kind.
pub struct BotMetrics {
    pub updates: Labelled<Counter, 1>,
    pub update_errors: Labelled<Counter, 1>,
    pub update_duration: Latency<1>,
}

/// The kinds of update the bot handles; anything else is `other`.
pub const UPDATE_KINDS: [&str; 4] = ["message", "callback_query", "my_chat_member", "other"];

pub fn bot() -> &'static BotMetrics {
    static GROUP: OnceLock<BotMetrics> = OnceLock::new();
    GROUP.get_or_init(|| {
        declare(|d| BotMetrics {
            updates: d.counters(
                "courier_bot_updates",
                "Telegram updates the bot handled, by kind",
                ["kind"],
                &each(&UPDATE_KINDS),
            ),
            update_errors: d.counters(
                "courier_bot_update_errors",
                "Updates whose handler failed (logged with the error), by kind",
                ["kind"],
                &each(&UPDATE_KINDS),
            ),
            update_duration: d.latency(
                "courier_bot_update_duration",
                "Time the bot took to handle an update, by kind",
                ["kind"],
                &each(&UPDATE_KINDS),
                REQUEST_SECONDS,
            ),
        })
    })
}

/// The senders' consumer backlog, reported by senders and loaders.
pub struct BacklogMetrics {
    pub pending: Gauge,
    pub ack_pending: Gauge,
    pub redelivered: Gauge,
}

pub fn backlog() -> &'static BacklogMetrics {
    static GROUP: OnceLock<BacklogMetrics> = OnceLock::new();
    GROUP.get_or_init(|| {
        declare(|d| BacklogMetrics {
            pending: d.gauge(
                "courier_consumer_pending",
                "Work items waiting for senders (every bot's senders consumer on COURIER_WORK)",
            ),
            ack_pending: d.gauge(
                "courier_consumer_ack_pending",
                "Work items delivered to senders and not yet acknowledged",
            ),
            redelivered: d.gauge(
                "courier_consumer_redelivered",
                "Work items delivered more than once and not yet acknowledged",
            ),
        })
    })
}

/// Outcomes of a work item (`courier_sends_total{outcome}`).
pub const SEND_OUTCOMES: [&str; 9] = [
    "delivered",
    "amended",
    "not_alive",
    "failed",
    "unchanged",
    "duplicate",
    "dropped",
    "held",
    "deferred",
];
/// Classes of Telegram's failures (`courier_send_failures_total{class}`).
pub const FAILURE_CLASSES: [&str; 7] = [
    "not_alive",
    "broken_content",
    "transient",
    "uncertain",
    "retry_after",
    "stars_exhausted",
    "unauthorized",
];
/// Rate budgets per bot token.
pub const LANES: [&str; 2] = ["free", "paid"];

pub struct SenderMetrics {
    pub sends: Labelled<Counter, 1>,
    pub send_failures: Labelled<Counter, 1>,
    pub telegram_429: Counter,
    pub rate_limit: Labelled<Gauge, 1>,
    pub in_flight: Gauge,
    pub in_flight_limit: Gauge,
    pub paid_lane_closed: Gauge,
    pub bots_with_work: Gauge,
    /// By `method` and `lane`.
    pub telegram_request_duration: Latency<2>,
    /// By `lane`.
    pub recipient_wait: Latency<1>,
    /// By `lane`.
    pub late_arrival_moves: Labelled<SecondsCounter, 1>,
    /// By `lane`.
    pub slots_dropped: Labelled<Counter, 1>,
}

pub fn sender() -> &'static SenderMetrics {
    static GROUP: OnceLock<SenderMetrics> = OnceLock::new();
    GROUP.get_or_init(|| {
        declare(|d| SenderMetrics {
            sends: d.counters(
                "courier_sends",
                "Work items handled, by outcome",
                ["outcome"],
                &each(&SEND_OUTCOMES),
            ),
            send_failures: d.counters(
                "courier_send_failures",
                "Failures of Bot API sends, by class",
                ["class"],
                &each(&FAILURE_CLASSES),
            ),
            telegram_429: d.counter(
                "courier_telegram_429",
                "429 Too Many Requests answers from the Bot API",
            ),
            rate_limit: d.gauges(
                "courier_send_rate_limit",
                "Configured messages per second per bot token, shared by all senders, by lane",
                ["lane"],
                &each(&LANES),
            ),
            in_flight: d.gauge(
                "courier_sends_in_flight",
                "Work items this sender is working on: waiting for a rate slot or in a Bot API request",
            ),
            in_flight_limit: d.gauge(
                "courier_sends_in_flight_limit",
                "Work items this sender may work on at once, the bots it serves together",
            ),
            paid_lane_closed: d.gauge(
                "courier_paid_lane_closed",
                "Bots whose paid campaigns this sender sends on the free lane because their Stars ran out or run low",
            ),
            bots_with_work: d.gauge(
                "courier_bots_with_work",
                "Added bots with work now (a campaign sending, or items in the work stream): the only ones whose consumers this sender pulls",
            ),
            telegram_request_duration: d.latency(
                "courier_telegram_request_duration",
                "Time the Bot API took to answer a send, by method and lane",
                ["method", "lane"],
                &[],
                REQUEST_SECONDS,
            ),
            recipient_wait: d.latency(
                "courier_recipient_wait",
                "Time from a recipient's work item being enqueued to its outcome, by lane",
                ["lane"],
                &each(&LANES),
                RECIPIENT_SECONDS,
            ),
            late_arrival_moves: d.counters(
                "courier_rate_schedule_moved_seconds",
                "Sending time this sender gave up because answers showed sends reaching Telegram later than the pacing headroom absorbs, by lane",
                ["lane"],
                &each(&LANES),
            ),
            slots_dropped: d.counters(
                "courier_rate_slots_dropped",
                "Rate slots this sender reserved and left unused, by lane: a worker woke too late for them (a busy machine), or no item came for them",
                ["lane"],
                &each(&LANES),
            ),
        })
    })
}

/// The projector's streams (`stream` label).
pub const PROJECTED_STREAMS: [&str; 2] = ["events", "outcomes"];
/// Campaign statuses (`courier_campaigns{status}`).
pub const CAMPAIGN_STATUSES: [&str; 7] = [
    "pending",
    "scheduled",
    "awaiting_approval",
    "sending",
    "paused",
    "completed",
    "cancelled",
];

pub struct ProjectorMetrics {
    pub lag: Labelled<Gauge, 1>,
    pub applied: Labelled<Counter, 1>,
    pub parked: Labelled<Counter, 1>,
    pub batch_duration: Latency<1>,
    pub campaigns: Labelled<Gauge, 1>,
    /// By `campaign` and `state`.
    pub campaign_recipients: Labelled<Gauge, 2>,
    /// By `campaign`: 1 while sending, 0 otherwise.
    pub campaign_sending: Labelled<Gauge, 1>,
    /// By `on_time` (`true`, `false`): the delivery SLI.
    pub recipients_resolved: Labelled<Counter, 1>,
}

pub fn projector() -> &'static ProjectorMetrics {
    static GROUP: OnceLock<ProjectorMetrics> = OnceLock::new();
    GROUP.get_or_init(|| {
        declare(|d| ProjectorMetrics {
            lag: d.gauges(
                "courier_projector_lag",
                "Messages the projector has yet to apply, from the stream's state, by stream",
                ["stream"],
                &each(&PROJECTED_STREAMS),
            ),
            applied: d.counters(
                "courier_projector_applied",
                "Messages applied to the read model, by stream",
                ["stream"],
                &each(&PROJECTED_STREAMS),
            ),
            parked: d.counters(
                "courier_projector_parked",
                "Messages the projector could not apply and parked in parked_messages, by stream",
                ["stream"],
                &each(&PROJECTED_STREAMS),
            ),
            batch_duration: d.latency(
                "courier_projector_batch_duration",
                "Time to apply one batch of messages in one transaction, by stream",
                ["stream"],
                &each(&PROJECTED_STREAMS),
                BATCH_SECONDS,
            ),
            campaigns: d.gauges(
                "courier_campaigns",
                "Campaigns per status",
                ["status"],
                &each(&CAMPAIGN_STATUSES),
            ),
            campaign_recipients: d.gauges(
                "courier_campaign_recipients",
                "Recipients of each unfinished or recently finished campaign: delivered, not_alive, failed, remaining",
                ["campaign", "state"],
                &[],
            ),
            campaign_sending: d.gauges(
                "courier_campaign_sending",
                "1 while the campaign is sending, 0 while it is paused or after it finished",
                ["campaign"],
                &[],
            ),
            recipients_resolved: d.counters(
                "courier_recipients_resolved",
                "Recipients given an outcome, by whether it came within the campaign's ideal time (audience / rate limit, plus 10% and 10 s, pauses excluded)",
                ["on_time"],
                &each(&["true", "false"]),
            ),
        })
    })
}

pub struct LoaderMetrics {
    pub enqueued: Counter,
    pub batch_duration: Latency<0>,
}

pub fn loader() -> &'static LoaderMetrics {
    static GROUP: OnceLock<LoaderMetrics> = OnceLock::new();
    GROUP.get_or_init(|| {
        declare(|d| LoaderMetrics {
            enqueued: d.counter(
                "courier_loader_enqueued",
                "Work items the loader enqueued for senders",
            ),
            batch_duration: d.latency(
                "courier_loader_batch_duration",
                "Time to fan out one batch of recipients, from reading it to its last acknowledgement",
                [],
                &[[]],
                BATCH_SECONDS,
            ),
        })
    })
}

/// The exposition formats `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0: exemplars, `# EOF`.
    OpenMetrics,
    /// Prometheus' text format 0.0.4: no exemplars.
    PrometheusText,
}

impl Format {
    /// OpenMetrics when the `Accept` header offers it at all (Prometheus
    /// prefers it), the Prometheus text format otherwise.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let offers_openmetrics = accept.is_some_and(|accept| {
            accept.split(',').any(|range| {
                let mut parameters = range.split(';').map(str::trim);
                parameters
                    .next()
                    .is_some_and(|media| media.eq_ignore_ascii_case("application/openmetrics-text"))
                    && parameters.all(|parameter| !matches!(parameter.split_once('='), Some(("q", q)) if q.parse::<f64>() == Ok(0.0)))
            })
        });
        if offers_openmetrics {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::PrometheusText => prometheus_text::CONTENT_TYPE,
        }
    }
}

/// Everything declared so far, in `format`.
pub fn render(format: Format) -> String {
    let registry = registry();
    let mut exposition = String::new();
    let encoded = match format {
        Format::OpenMetrics => text::encode(&mut exposition, &registry),
        Format::PrometheusText => prometheus_text::encode(&mut exposition, &registry),
    };
    // Writing into a String fails only if a label value's Display does,
    // and ours are strings.
    if let Err(error) = encoded {
        tracing::error!(%error, "encoding the metrics failed");
    }
    exposition
}

/// The `/metrics` response for a request with these headers.
pub fn exposition(headers: &HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = Format::negotiate(accept);
    (
        [(header::CONTENT_TYPE, format.content_type())],
        render(format),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_gets_openmetrics_and_everyone_else_the_text_format() {
        // What Prometheus 3 sends.
        let prometheus = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("Application/OpenMetrics-Text")),
            Format::OpenMetrics
        );
        assert_eq!(Format::negotiate(None), Format::PrometheusText);
        assert_eq!(Format::negotiate(Some("*/*")), Format::PrometheusText);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::PrometheusText
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0, text/plain")),
            Format::PrometheusText
        );
    }

    fn lines_of(exposition: &str, metric: &str) -> Vec<String> {
        exposition
            .lines()
            .filter(|line| line.contains(metric))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn counters_start_at_zero_for_their_known_labels_with_help() {
        let sender = sender();
        sender.sends.get(["delivered"]).inc();
        let text = render(Format::PrometheusText);
        let sends = lines_of(&text, "courier_sends_total");
        assert!(
            sends
                .contains(&"# HELP courier_sends_total Work items handled, by outcome.".to_owned()),
            "{sends:?}"
        );
        assert!(sends.contains(&"# TYPE courier_sends_total counter".to_owned()));
        assert!(sends.contains(&"courier_sends_total{outcome=\"deferred\"} 0".to_owned()));
        assert!(
            lines_of(&text, "courier_telegram_429_total")
                .contains(&"courier_telegram_429_total 0".to_owned())
        );
        let openmetrics = render(Format::OpenMetrics);
        assert!(openmetrics.contains("# TYPE courier_sends counter\n"));
        assert!(openmetrics.contains("courier_sends_total{outcome=\"held\"} 0\n"));
        assert!(openmetrics.ends_with("# EOF\n"));
    }

    #[test]
    fn latencies_carry_the_sampled_trace_as_exemplar_in_openmetrics_only() {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt as _;

        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let projector = projector();
        let trace_id = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("batch");
            let _entered = span.enter();
            projector
                .batch_duration
                .observe(["events"], Duration::from_millis(3));
            TraceExemplar::current().map(|exemplar| exemplar.trace_id)
        });
        let trace_id = trace_id.expect("a sampled trace");
        // Outside any trace: counted, with no exemplar.
        projector
            .batch_duration
            .observe(["outcomes"], Duration::from_millis(3));

        let openmetrics = render(Format::OpenMetrics);
        let bucket = lines_of(
            &openmetrics,
            "courier_projector_batch_duration_seconds_bucket{le=\"0.005\",stream=\"events\"}",
        );
        assert_eq!(bucket.len(), 1, "{openmetrics}");
        assert!(
            bucket[0].starts_with(&format!(
                "courier_projector_batch_duration_seconds_bucket{{le=\"0.005\",stream=\"events\"}} 1 # {{trace_id=\"{trace_id}\"}} 0.003 "
            )),
            "{bucket:?}"
        );
        assert!(openmetrics.contains("# UNIT courier_projector_batch_duration_seconds seconds\n"));
        assert!(!openmetrics.contains("{le=\"0.005\",stream=\"outcomes\"} 1 #"));

        let text = render(Format::PrometheusText);
        assert!(text.contains(
            "courier_projector_batch_duration_seconds_bucket{stream=\"events\",le=\"0.005\"} 1\n"
        ));
        assert!(!text.contains("trace_id"));
    }

    #[test]
    fn a_process_names_its_instance() {
        process("courier-test", "pod-7");
        let openmetrics = render(Format::OpenMetrics);
        assert!(
            openmetrics.contains(
                "target_info{service_name=\"courier-test\",service_instance_id=\"pod-7\"} 1\n"
            ),
            "{openmetrics}"
        );
        assert!(render(Format::PrometheusText).contains("# TYPE target_info gauge\n"));
    }
}
