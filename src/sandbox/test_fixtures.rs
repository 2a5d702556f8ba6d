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
