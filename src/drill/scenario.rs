//! The drill scenarios: what each injects, what "recovered" means, and which actions are right.

use crate::cluster::actions::Verb;

use super::DrillError;

/// How a scenario breaks things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 5xx on the canary.
    CanaryErrors,
    /// Added latency on the canary.
    CanaryLatency,
    /// The drill switches to the idle colour, whose readiness then fails.
    BlueGreenReadiness,
    /// The drill rolls out a new image that crash-loops.
    RollingCrashLoop,
    /// The canary's error ratio rises in steps.
    SlowBurn,
}

/// One rehearsal.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: &'static str,
    pub title: &'static str,
    /// The app it targets by default (the sandbox's seeded world).
    pub app: &'static str,
    pub kind: Kind,
    pub injects: &'static str,
    pub recovered: &'static str,
    /// The actions that mitigate it.
    pub right: &'static [Verb],
}

/// Canary error ratio of the error-spike scenario.
pub const SPIKE_ERROR_RATIO: f64 = 0.25;
/// Latency added by the latency scenario, in milliseconds.
pub const ADDED_LATENCY_MS: f64 = 900.0;
/// The slow burn's canary error ratios, one per step.
pub const BURN_STEPS: [f64; 5] = [0.02, 0.05, 0.1, 0.2, 0.4];
/// The image tag the crash-loop scenario rolls out on the sandbox.
pub const CRASH_TAG: &str = "9.9.9-drill";

pub const SCENARIOS: [Scenario; 5] = [
    Scenario {
        name: "canary-error-spike",
        title: "Canary error spike",
        app: "checkout",
        kind: Kind::CanaryErrors,
        injects: "the canary answers 25 % of its requests with 5xx (sandbox fault errorRatio on version `canary`)",
        recovered: "the app's error ratio ≤ max_error_ratio and p99 ≤ max_p99_seconds, with traffic, for the hold time after an action",
        right: &[Verb::Abort, Verb::Rollback],
    },
    Scenario {
        name: "canary-latency",
        title: "Canary latency regression",
        app: "checkout",
        kind: Kind::CanaryLatency,
        injects: "900 ms added to every canary request (sandbox fault latency on version `canary`)",
        recovered: "the app's p99 ≤ max_p99_seconds and error ratio ≤ max_error_ratio, with traffic, for the hold time after an action",
        right: &[Verb::Abort, Verb::Rollback],
    },
    Scenario {
        name: "bluegreen-readiness",
        title: "Blue/green target fails readiness",
        app: "payments",
        kind: Kind::BlueGreenReadiness,
        injects: "the drill flips the Service to the idle colour (as a release pipeline would), then that colour's readiness probes fail (sandbox fault readinessFailure): its pods leave the endpoints and the app serves nothing",
        recovered: "traffic is served again with error ratio and p99 under the thresholds for the hold time (no traffic never counts)",
        right: &[Verb::Flip, Verb::Rollback],
    },
    Scenario {
        name: "rolling-crashloop",
        title: "Crash loop after a rolling update",
        app: "frontend",
        kind: Kind::RollingCrashLoop,
        injects: "the drill sets a new image on the Deployment whose containers crash-loop (sandbox: tag 9.9.9-drill with fault crashLoop; a real cluster: [drill] bad_image)",
        recovered: "the Deployment runs an image other than the bad one with every replica updated and Ready, and the metrics are under the thresholds for the hold time",
        right: &[Verb::Rollback],
    },
    Scenario {
        name: "slow-burn",
        title: "Slow burn",
        app: "checkout",
        kind: Kind::SlowBurn,
        injects: "the canary's error ratio creeps up: 2 %, 5 %, 10 %, 20 %, 40 %, one step per --step seconds of cluster time (sandbox faults errorRatio on version `canary`)",
        recovered: "the app's error ratio ≤ max_error_ratio and p99 ≤ max_p99_seconds, with traffic, for the hold time after an action",
        right: &[Verb::Abort, Verb::Rollback],
    },
];

/// The scenario called `name`.
pub fn find(name: &str) -> Result<&'static Scenario, DrillError> {
    SCENARIOS.iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        DrillError::Usage(format!(
            "no drill scenario {name:?}; known: {} (see `kockpit drill list`)",
            names.join(", ")
        ))
    })
}

impl Scenario {
    /// Whether the audit action name (`abort`, `rollback`, …) mitigates this scenario.
    pub fn is_right(&self, action: &str) -> bool {
        self.right.iter().any(|v| v.name() == action)
    }

    pub fn right_names(&self) -> Vec<&'static str> {
        self.right.iter().map(|v| v.name()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for s in &SCENARIOS {
            assert_eq!(find(s.name).map(|f| f.name).ok(), Some(s.name));
        }
        let e = find("nope")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("canary-error-spike"), "{e}");
    }

    #[test]
    fn right_actions_per_scenario() {
        let spike = find("canary-error-spike").ok();
        assert_eq!(spike.map(|s| s.is_right("abort")), Some(true));
        assert_eq!(spike.map(|s| s.is_right("promote-full")), Some(false));
        let bg = find("bluegreen-readiness").ok();
        assert_eq!(bg.map(|s| s.is_right("flip")), Some(true));
        assert_eq!(bg.map(|s| s.is_right("restart")), Some(false));
        let roll = find("rolling-crashloop").ok();
        assert_eq!(roll.map(|s| s.is_right("rollback")), Some(true));
        assert_eq!(roll.map(|s| s.is_right("pause")), Some(false));
    }
}
