//! Prometheus metrics, served at `GET /metrics`.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The node's metrics; clones share the same series.
#[derive(Clone)]
pub struct Metrics {
    /// Committed height.
    pub height: Gauge,
    /// Transactions in the mempool.
    pub mempool: Gauge,
    /// Transactions admitted to the mempool.
    pub txs_admitted: Counter,
    /// Transactions committed in blocks.
    pub txs_committed: Counter,
    /// Seconds spent building (executing and preparing) a block.
    pub block_build_seconds: Histogram,
    /// HTTP requests served.
    pub http_requests: Counter,
    registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("poi");
        let height = Gauge::default();
        let mempool = Gauge::default();
        let txs_admitted = Counter::default();
        let txs_committed = Counter::default();
        let http_requests = Counter::default();
        let block_build_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register("height", "Committed block height", height.clone());
        registry.register(
            "mempool_txs",
            "Transactions in the mempool",
            mempool.clone(),
        );
        registry.register(
            "txs_admitted",
            "Transactions admitted",
            txs_admitted.clone(),
        );
        registry.register(
            "txs_committed",
            "Transactions committed",
            txs_committed.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests served",
            http_requests.clone(),
        );
        registry.register(
            "block_build_seconds",
            "Time to execute and prepare a proposed block",
            block_build_seconds.clone(),
        );
        Self {
            height,
            mempool,
            txs_admitted,
            txs_committed,
            block_build_seconds,
            http_requests,
            registry: Arc::new(registry),
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
