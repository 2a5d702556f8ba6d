//! One-line human-readable rendering.

use std::collections::HashMap;

use serde_json::Value;

use super::{Entry, Phase};

/// A short rendering of a `before`/`after` value: scalars bare, `null` as `-`, others as
/// compact JSON cut to 40 characters.
fn short(v: &Value) -> String {
    let s = match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(39).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// `2026-11-22 02:10:03  production  shop  HTTPRoute/checkout  promote 10 → 25  priya@10.0.0.5  OK 200  "reason"`.
///
/// `entry` is an intent or event; `outcome` is the matching outcome, if any. An intent without
/// one is marked `DANGLING`. An outcome on its own renders its own result.
pub fn format_line(entry: &Entry, outcome: Option<&Entry>) -> String {
    let time = entry.time.strftime("%Y-%m-%d %H:%M:%S");
    let who = match &entry.operator.ssh_client {
        Some(ip) => format!("{}@{}", entry.operator.os_user, ip),
        None => entry.operator.os_user.clone(),
    };
    let change = if entry.action.starts_with("release-") {
        // `release-conclude #3 1.5.0 → concluded (override: Observation)`.
        let a = &entry.after;
        let mut s = format!(
            "{} #{} {} → {}",
            entry.action,
            a.get("release").and_then(Value::as_u64).unwrap_or(0),
            a.get("version").and_then(Value::as_str).unwrap_or("?"),
            a.get("state").and_then(Value::as_str).unwrap_or("?")
        );
        if let Some(f) = a.get("failing").and_then(Value::as_array) {
            let names: Vec<&str> = f.iter().filter_map(Value::as_str).collect();
            s.push_str(&format!(" (override: {})", names.join(", ")));
        }
        s
    } else if entry.before.is_null() && entry.after.is_null() {
        entry.action.clone()
    } else {
        format!(
            "{} {} → {}",
            entry.action,
            short(&entry.before),
            short(&entry.after)
        )
    };
    let result_of = |e: &Entry| match &e.result {
        Some(r) => match r.status {
            Some(s) if (200..300).contains(&s) => format!("OK {s}"),
            Some(s) => format!("FAILED {s}: {}", r.message),
            None => format!("ERROR: {}", r.message),
        },
        None => "?".to_string(),
    };
    let status = match (entry.phase, outcome) {
        (_, Some(o)) => result_of(o),
        (Phase::Intent, None) => "DANGLING".to_string(),
        (Phase::Outcome, None) => result_of(entry),
        (Phase::Event, None) => "EVENT".to_string(),
    };
    let mut line = format!(
        "{time}  {}  {}  {}  {change}  {who}  {status}",
        entry.environment, entry.namespace, entry.object
    );
    if entry.drill {
        line.push_str("  [drill]");
    }
    if let Some(r) = &entry.reason {
        line.push_str(&format!("  {r:?}"));
    }
    line
}

/// Render entries one line per action: each intent paired with its outcome (by id), events
/// alone, outcomes whose intent is not in `entries` alone.
pub fn format_entries(entries: &[Entry]) -> Vec<String> {
    let outcomes: HashMap<&str, &Entry> = entries
        .iter()
        .filter(|e| e.phase == Phase::Outcome)
        .map(|e| (e.id.as_str(), e))
        .collect();
    let intents: std::collections::HashSet<&str> = entries
        .iter()
        .filter(|e| e.phase == Phase::Intent)
        .map(|e| e.id.as_str())
        .collect();
    entries
        .iter()
        .filter_map(|e| match e.phase {
            Phase::Intent => Some(format_line(e, outcomes.get(e.id.as_str()).copied())),
            Phase::Outcome if intents.contains(e.id.as_str()) => None,
            _ => Some(format_line(e, None)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Operator, Target};
    use serde_json::json;

    fn intent() -> Entry {
        let mut e = Entry::intent(
            Operator {
                os_user: "priya".into(),
                kube_user: None,
                ssh_client: Some("10.0.0.5".into()),
            },
            Target {
                environment: "production".into(),
                context: "prod".into(),
                namespace: "shop".into(),
                object: "HTTPRoute/checkout".into(),
            },
            "promote",
            json!(10),
            json!(25),
        );
        e.time = "2026-11-22T02:10:03Z".parse().unwrap_or(e.time);
        e.reason = Some("reason".into());
        e
    }

    #[test]
    fn release_transitions_read_as_such() {
        let mut e = intent();
        e.phase = Phase::Event;
        e.action = "release-conclude".into();
        e.object = "Release/checkout".into();
        e.after = json!({"release": 3, "version": "1.5.0", "state": "concluded", "failing": ["Observation"]});
        let line = format_line(&e, None);
        assert!(
            line.contains("release-conclude #3 1.5.0 → concluded (override: Observation)  priya@10.0.0.5  EVENT"),
            "{line}"
        );
    }

    #[test]
    fn formats_paired_and_dangling() {
        let i = intent();
        let o = Entry::outcome(&i, Some(200), "ok", 12);
        let lines = format_entries(&[i.clone(), o]);
        assert_eq!(
            lines,
            vec![
                "2026-11-22 02:10:03  production  shop  HTTPRoute/checkout  promote 10 → 25  priya@10.0.0.5  OK 200  \"reason\""
            ]
        );
        let lines = format_entries(&[i]);
        assert!(lines[0].contains("DANGLING"), "{}", lines[0]);
    }
}
