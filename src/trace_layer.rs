//! The capturing side of `openclaw trace`: a tracing layer with its own per-layer filter, so
//! while a trace is active every event about a traced connection is captured at any level
//! (the log filter of the file and stderr does not apply to it), and when none is active it
//! costs one atomic load per event. An event concerns a connection when it carries a
//! `conn_id` field or happens inside a span that does (the session's `conn` span).

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use openclaw_actors::trace::TraceControl;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Where the captured lines go (set once the gateway has started).
pub type Sink = Arc<OnceLock<Arc<TraceControl>>>;

/// The capturing layer.
pub struct TraceLayer {
    sink: Sink,
}

/// Its filter: on while any trace is active.
pub struct Active {
    sink: Sink,
}

/// The `conn_id` of a span, kept in its extensions.
struct ConnId(String);

impl TraceLayer {
    /// A layer and its filter writing into `sink`.
    pub fn new(sink: Sink) -> (Self, Active) {
        (Self { sink: sink.clone() }, Active { sink })
    }
}

fn active(sink: &Sink) -> Option<&Arc<TraceControl>> {
    sink.get().filter(|c| c.any())
}

impl<S: Subscriber> Filter<S> for Active {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        // Spans always (one per connection; a trace may start after the span was made),
        // events only while a trace is active.
        meta.is_span() || active(&self.sink).is_some()
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        if meta.is_span() {
            tracing::subscriber::Interest::always()
        } else {
            // Decided per event: a trace may start at any time.
            tracing::subscriber::Interest::sometimes()
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
}

/// Collects an event's fields into `k=v` text, and its `conn_id` and message apart.
#[derive(Default)]
struct Fields {
    conn_id: Option<String>,
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "conn_id" => self.conn_id = Some(format!("{value:?}").trim_matches('"').to_string()),
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "conn_id" => self.conn_id = Some(value.to_string()),
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }
}

impl<S> Layer<S> for TraceLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let (Some(c), Some(span)) = (f.conn_id, ctx.span(id)) {
            span.extensions_mut().insert(ConnId(c));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(control) = active(&self.sink) else {
            return;
        };
        let mut f = Fields::default();
        event.record(&mut f);
        let mut path = String::new();
        let mut conn = f.conn_id.clone().filter(|c| !c.is_empty());
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if !path.is_empty() {
                    path.push(':');
                }
                path.push_str(span.name());
                if conn.is_none() {
                    conn = span.extensions().get::<ConnId>().map(|c| c.0.clone());
                }
            }
        }
        let Some(conn) = conn else { return };
        if !control.wants(&conn) {
            return;
        }
        let m = event.metadata();
        let line = format!(
            "{} {:>5} conn={conn} {}{}{}: {}{}",
            openclaw_actors::shared::now_ms(),
            m.level(),
            m.target(),
            if path.is_empty() { "" } else { " " },
            path,
            f.message,
            f.rest
        );
        control.push(&conn, &line, Instant::now());
    }
}
