//! The HTTP side: `/metrics` served with axum, in the format the scraper asks for.

use std::sync::Arc;

use super::Exporter;

impl Exporter {
    /// Serves `/metrics` on `listener` until `shutdown` is cancelled.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> std::io::Result<()> {
        use axum::http::{HeaderMap, StatusCode, header};
        use axum::routing::get;
        let me = self;
        let handler = move |headers: HeaderMap| {
            let exporter = Arc::clone(&me);
            async move {
                let openmetrics = headers
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("application/openmetrics-text"));
                match exporter.encode(openmetrics) {
                    Ok(body) => {
                        let content_type = if openmetrics {
                            "application/openmetrics-text; version=1.0.0; charset=utf-8"
                        } else {
                            prometheus_client::encoding::prometheus_text::CONTENT_TYPE
                        };
                        (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body)
                    }
                    Err(_) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        [(header::CONTENT_TYPE, "text/plain")],
                        "encoding failed\n".to_owned(),
                    ),
                }
            }
        };
        let app = axum::Router::new()
            .route("/metrics", get(handler))
            .route("/", get(|| async { "loadplan: metrics at /metrics\n" }));
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }
}
