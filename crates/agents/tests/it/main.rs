//! Integration tests of `poi-agents`: a provider's server over a real trained job directory
//! checked by the validator's fetch-verify-replay path ([`served`]), and the agents against a
//! real node served on loopback: blocks built by a background thread ([`chain`]), or by one
//! consensus validator whose blocks carry beacon seeds, so checks are drawn and settled
//! ([`e2e`]).

mod chain;
mod e2e;
mod served;

use poi_repops::model::{MlpSpec, ModelSpec};
use poi_repops::train::JobSpec;

/// Steps of the test job.
pub(crate) const STEPS: u64 = 12;
/// Steps per segment (so 4 segments).
pub(crate) const K: u64 = 3;

/// A tiny MLP on iris: 12 steps, checkpoints every 3.
pub(crate) fn tiny_spec() -> JobSpec {
    let mut spec = JobSpec::default_for("mlp", Some("iris"), STEPS, 7).expect("spec");
    spec.model = ModelSpec::Mlp(MlpSpec {
        hidden: vec![8],
        ..MlpSpec::default()
    });
    spec.batch = 8;
    spec.checkpoint_every = K;
    spec
}

/// Logs to the test output (`RUST_LOG=poi_agents=debug` for more).
pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "poi_agents=info".into()),
        )
        .with_test_writer()
        .try_init();
}
