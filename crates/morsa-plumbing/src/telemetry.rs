//! Telemetry of Morsa's servers: the `morsa` binary's log lines on stderr, filtered by
//! `RUST_LOG`, and one span per HTTP request that names the blob it concerns.

use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;

/// Installs the stderr subscriber with `default` as the filter when `RUST_LOG` is unset or
/// invalid (e.g. `"info"`, `"warn,morsa_node=debug"`). Only the first call in a process
/// installs it; later calls do nothing.
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// The layer a router adds to open [`request_span`] around each request it serves.
pub type RequestTraceLayer<B> =
    TraceLayer<SharedClassifier<ServerErrorsAsFailures>, fn(&http::Request<B>) -> tracing::Span>;

/// A [`RequestTraceLayer`]: what is logged while a request is served carries its span.
pub fn trace_layer<B>() -> RequestTraceLayer<B> {
    TraceLayer::new_for_http().make_span_with(request_span::<B> as fn(&http::Request<B>) -> tracing::Span)
}

/// The span of one request: its method and path, and `blob_id` when the path names a blob
/// (the segment after `blobs`, as in `/v1/blobs/{blob_id}/...`).
pub fn request_span<B>(request: &http::Request<B>) -> tracing::Span {
    let path = request.uri().path();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path,
        blob_id = tracing::field::Empty,
    );
    if let Some(blob_id) = blob_id_in(path) {
        span.record("blob_id", blob_id);
    }
    span
}

/// The path segment after `blobs`, if there is a non-empty one.
fn blob_id_in(path: &str) -> Option<&str> {
    let mut segments = path.split('/');
    segments.by_ref().find(|segment| *segment == "blobs")?;
    segments.next().filter(|segment| !segment.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blob_id_is_the_segment_after_blobs() {
        assert_eq!(blob_id_in("/v1/blobs/abc/slivers/0/primary"), Some("abc"));
        assert_eq!(blob_id_in("/v1/blobs/abc"), Some("abc"));
        assert_eq!(blob_id_in("/v1/accounts/xyz/blobs"), None);
        assert_eq!(blob_id_in("/v1/blobs/"), None);
        assert_eq!(blob_id_in("/v1/health"), None);
    }

    /// The fields of the spans opened while it is the subscriber, as `name=value`.
    #[derive(Clone, Default)]
    struct SpanFields(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl tracing::field::Visit for SpanFields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.lock().unwrap().push(format!("{}={value:?}", field.name()));
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanFields {
        fn on_new_span(
            &self,
            attributes: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            attributes.record(&mut self.clone());
        }

        fn on_record(
            &self,
            _: &tracing::span::Id,
            values: &tracing::span::Record<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            values.record(&mut self.clone());
        }
    }

    #[test]
    fn a_request_span_carries_the_blob_id_of_its_path() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let fields = SpanFields::default();
        let subscriber = tracing_subscriber::registry().with(fields.clone());
        tracing::subscriber::with_default(subscriber, || {
            let request = http::Request::get("/v1/blobs/abc/metadata").body(()).unwrap();
            let _span = request_span(&request);
        });
        let fields = fields.0.lock().unwrap().clone();
        assert!(fields.contains(&"blob_id=\"abc\"".to_string()), "{fields:?}");
        assert!(fields.contains(&"path=\"/v1/blobs/abc/metadata\"".to_string()), "{fields:?}");
    }
}
