//! Test support: the responses recorded from a real kube-apiserver, beside the project in
//! `../shared/fixtures/kube-apiserver-1.26/`.

use serde_json::Value;

/// A fixture file's text (panics with the path when missing: tests need them).
pub fn fixture(rel: &str) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/kube-apiserver-1.26/"
    );
    std::fs::read_to_string(format!("{path}{rel}"))
        .unwrap_or_else(|e| panic!("fixture {path}{rel}: {e}"))
}

/// A fixture file parsed as JSON.
pub fn fixture_json(rel: &str) -> Value {
    serde_json::from_str(&fixture(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// An in-process sandbox on a manual clock (no HTTP server, no controller task): the base
/// cluster, and the seeded world when `world` is set. Tests drive it with [`run_for`].
pub fn sandbox(world: bool) -> super::Sandbox {
    use std::sync::Arc;
    let start: jiff::Timestamp = "2026-11-20T10:00:00Z".parse().expect("timestamp");
    let sb = super::Sandbox {
        store: super::store::Store::new(Arc::new(super::clock::Clock::manual(start)), 1, 50_000),
        faults: super::faults::Faults::default(),
        metrics: super::metrics::Metrics::default(),
        bookmark_interval: std::time::Duration::from_secs(60),
        seed: 1,
        flux: Default::default(),
    };
    super::seed::base(&sb);
    if world {
        super::seed::world(&sb);
    }
    sb
}

/// Advance the clock `seconds` one second at a time, running every controller each second.
pub fn run_for(sb: &super::Sandbox, seconds: u64) {
    for _ in 0..seconds {
        sb.store.clock.advance(std::time::Duration::from_secs(1));
        super::controllers::reconcile_all(sb);
    }
}
