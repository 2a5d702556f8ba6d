//! Drill reports (text, Markdown, JSON), the drill history file and its trends.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DrillError;

/// One action taken during the drill, from the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionTaken {
    pub time: jiff::Timestamp,
    /// Seconds after the fault was injected.
    pub after_fault_seconds: f64,
    pub action: String,
    pub object: String,
    pub operator: String,
    pub result: String,
    pub ok: bool,
    #[serde(default)]
    pub automatic: bool,
    /// Whether this action is one of the scenario's right ones.
    pub right: bool,
}

/// How the drill ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Recovered,
    /// The timeout passed before recovery.
    NotRecovered,
    /// Stopped (Ctrl-C) before the end.
    Abandoned,
}

/// The drill report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    pub id: String,
    pub scenario: String,
    pub title: String,
    pub environment: String,
    pub namespace: String,
    pub app: String,
    /// On the sandbox (fault API) or a real cluster (bad image).
    pub sandbox: bool,
    pub seed: u64,
    pub injects: String,
    pub recovered_means: String,
    pub right_actions: Vec<String>,
    pub started: jiff::Timestamp,
    pub fault_injected_at: Option<jiff::Timestamp>,
    pub first_action_at: Option<jiff::Timestamp>,
    pub mitigated_at: Option<jiff::Timestamp>,
    pub recovered_at: Option<jiff::Timestamp>,
    pub ended: jiff::Timestamp,
    pub time_to_detect_seconds: Option<f64>,
    pub time_to_mitigate_seconds: Option<f64>,
    pub time_to_recover_seconds: Option<f64>,
    pub actions: Vec<ActionTaken>,
    /// The mitigating action (recovered) or else the first action was a right one; none
    /// without any action.
    pub right_action: Option<bool>,
    pub first_action_right: Option<bool>,
    pub mitigation_action: Option<String>,
    pub outcome: Outcome,
    pub hold_seconds: f64,
    pub max_error_ratio: f64,
    pub max_p99_seconds: f64,
}

fn secs(v: Option<f64>) -> String {
    match v {
        Some(s) => format!("{s:.1} s"),
        None => "—".into(),
    }
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "no action taken",
    }
}

impl DrillReport {
    fn outcome_text(&self) -> &'static str {
        match self.outcome {
            Outcome::Recovered => "recovered",
            Outcome::NotRecovered => "NOT recovered before the timeout",
            Outcome::Abandoned => "abandoned",
        }
    }

    /// The report for a terminal.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "Drill {} — {} ({}) in {}/{}: {}\n",
            self.id,
            self.title,
            self.scenario,
            self.environment,
            self.namespace,
            self.outcome_text()
        );
        s.push_str(&format!("  injected:  {}\n", self.injects));
        s.push_str(&format!(
            "  detect {}  mitigate {}  recover {}\n",
            secs(self.time_to_detect_seconds),
            secs(self.time_to_mitigate_seconds),
            secs(self.time_to_recover_seconds)
        ));
        s.push_str(&format!(
            "  right action: {}{} (right: {})\n",
            yes_no(self.right_action),
            match &self.mitigation_action {
                Some(a) => format!(" — mitigated by {a}"),
                None => String::new(),
            },
            self.right_actions.join(" or ")
        ));
        if self.first_action_right == Some(false) && self.right_action == Some(true) {
            s.push_str("  (the first action was not a right one)\n");
        }
        s.push_str("  actions:\n");
        if self.actions.is_empty() {
            s.push_str("    none\n");
        }
        for a in &self.actions {
            s.push_str(&format!(
                "    +{:>6.1} s  {:<12} {:<24} by {}{}  {}{}\n",
                a.after_fault_seconds,
                a.action,
                a.object,
                a.operator,
                if a.automatic { " (automatic)" } else { "" },
                if a.right { "right" } else { "not right" },
                if a.ok { "" } else { " (failed)" }
            ));
        }
        s
    }

    pub fn to_markdown(&self) -> String {
        let t = |ts: Option<jiff::Timestamp>| ts.map(|t| t.to_string()).unwrap_or("—".into());
        let mut s = format!(
            "# Drill {}: {}\n\n- Scenario: `{}` on {} (`{}/{}`, app `{}`)\n- Outcome: **{}**\n- Injected: {}\n- Recovered means: {} (error ratio ≤ {:.2} %, p99 ≤ {:.0} ms, held {} s)\n- Right actions: {}\n- Seed: {}\n\n",
            self.id,
            self.title,
            self.scenario,
            if self.sandbox {
                "the sandbox"
            } else {
                "a real cluster"
            },
            self.environment,
            self.namespace,
            self.app,
            self.outcome_text(),
            self.injects,
            self.recovered_means,
            self.max_error_ratio * 100.0,
            self.max_p99_seconds * 1000.0,
            self.hold_seconds,
            self.right_actions.join(", "),
            self.seed
        );
        s.push_str("| | time | after the fault |\n|---|---|---|\n");
        s.push_str(&format!("| started | {} | |\n", self.started));
        s.push_str(&format!(
            "| fault injected | {} | 0 s |\n",
            t(self.fault_injected_at)
        ));
        s.push_str(&format!(
            "| first operator action (detect) | {} | {} |\n",
            t(self.first_action_at),
            secs(self.time_to_detect_seconds)
        ));
        s.push_str(&format!(
            "| mitigation | {} | {} |\n",
            t(self.mitigated_at),
            secs(self.time_to_mitigate_seconds)
        ));
        s.push_str(&format!(
            "| recovered | {} | {} |\n\n",
            t(self.recovered_at),
            secs(self.time_to_recover_seconds)
        ));
        s.push_str(&format!(
            "Right action: **{}**{}\n\n## Actions\n\n",
            yes_no(self.right_action),
            match &self.mitigation_action {
                Some(a) => format!(" (mitigated by `{a}`)"),
                None => String::new(),
            }
        ));
        if self.actions.is_empty() {
            s.push_str("None.\n");
        } else {
            s.push_str(
                "| after | action | object | by | result | right |\n|---|---|---|---|---|---|\n",
            );
            for a in &self.actions {
                s.push_str(&format!(
                    "| {:.1} s | {} | {} | {}{} | {} | {} |\n",
                    a.after_fault_seconds,
                    a.action,
                    a.object,
                    a.operator,
                    if a.automatic { " (automatic)" } else { "" },
                    a.result.replace('|', "\\|"),
                    if a.right { "yes" } else { "no" }
                ));
            }
        }
        s
    }
}

/// `$XDG_STATE_HOME/kockpit/drills/`.
pub fn dir() -> PathBuf {
    crate::audit::default_path().with_file_name("drills")
}

/// Write `<id>.md` and `<id>.json` into `dir` and append the report to `history.jsonl`;
/// returns the two report paths.
pub fn save(dir: &Path, r: &DrillReport) -> Result<(PathBuf, PathBuf), DrillError> {
    let fail = |p: &Path, e: std::io::Error| {
        DrillError::Failed(format!("writing drill report {}: {e}", p.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let md = dir.join(format!("{}.md", r.id));
    std::fs::write(&md, r.to_markdown()).map_err(|e| fail(&md, e))?;
    let json = dir.join(format!("{}.json", r.id));
    let text = serde_json::to_string_pretty(r)
        .map_err(|e| DrillError::Failed(format!("drill report: {e}")))?;
    std::fs::write(&json, text).map_err(|e| fail(&json, e))?;
    let hist = dir.join("history.jsonl");
    let mut line =
        serde_json::to_string(r).map_err(|e| DrillError::Failed(format!("drill report: {e}")))?;
    line.push('\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&hist)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| fail(&hist, e))?;
    Ok((md, json))
}

/// Past drills, oldest first. A line that is not a report is an error naming it.
pub fn history(dir: &Path) -> Result<Vec<DrillReport>, DrillError> {
    let path = dir.join("history.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(DrillError::Failed(format!("{}: {e}", path.display()))),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                DrillError::Failed(format!(
                    "{}:{}: not a drill report: {e}",
                    path.display(),
                    i + 1
                ))
            })
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Per-scenario trends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    pub scenario: String,
    pub drills: usize,
    pub recovered: usize,
    pub right_action: usize,
    pub median_ttd_seconds: Option<f64>,
    pub median_ttm_seconds: Option<f64>,
    pub median_ttr_seconds: Option<f64>,
    /// Time to recover of the last and the previous recovered drill.
    pub last_ttr_seconds: Option<f64>,
    pub previous_ttr_seconds: Option<f64>,
}

pub fn trends(reports: &[DrillReport]) -> Vec<Trend> {
    let mut by: BTreeMap<&str, Vec<&DrillReport>> = BTreeMap::new();
    for r in reports {
        by.entry(&r.scenario).or_default().push(r);
    }
    by.into_iter()
        .map(|(scenario, rs)| {
            let ttrs: Vec<f64> = rs
                .iter()
                .filter_map(|r| r.time_to_recover_seconds)
                .collect();
            Trend {
                scenario: scenario.to_string(),
                drills: rs.len(),
                recovered: rs
                    .iter()
                    .filter(|r| r.outcome == Outcome::Recovered)
                    .count(),
                right_action: rs.iter().filter(|r| r.right_action == Some(true)).count(),
                median_ttd_seconds: median(
                    rs.iter().filter_map(|r| r.time_to_detect_seconds).collect(),
                ),
                median_ttm_seconds: median(
                    rs.iter()
                        .filter_map(|r| r.time_to_mitigate_seconds)
                        .collect(),
                ),
                median_ttr_seconds: median(ttrs.clone()),
                last_ttr_seconds: ttrs.last().copied(),
                previous_ttr_seconds: ttrs.len().checked_sub(2).map(|i| ttrs[i]),
            }
        })
        .collect()
}

/// `kockpit drill history` as text.
pub fn history_text(reports: &[DrillReport]) -> String {
    if reports.is_empty() {
        return "no drills yet: run `kockpit drill run SCENARIO`\n".into();
    }
    let mut s = format!(
        "{:<20} {:<20} {:<12} {:>8} {:>9} {:>8} {:<6} {}\n",
        "STARTED", "SCENARIO", "ENV", "DETECT", "MITIGATE", "RECOVER", "RIGHT", "OUTCOME"
    );
    for r in reports {
        let started = r.started.strftime("%Y-%m-%d %H:%M:%S").to_string();
        s.push_str(&format!(
            "{:<20} {:<20} {:<12} {:>8} {:>9} {:>8} {:<6} {}\n",
            started,
            r.scenario,
            r.environment,
            secs(r.time_to_detect_seconds),
            secs(r.time_to_mitigate_seconds),
            secs(r.time_to_recover_seconds),
            match r.right_action {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            },
            r.outcome_text()
        ));
    }
    s.push_str("\nTrends per scenario:\n");
    for t in trends(reports) {
        let trend = match (t.last_ttr_seconds, t.previous_ttr_seconds) {
            (Some(l), Some(p)) if l < p => format!("faster: {l:.1} s vs {p:.1} s before"),
            (Some(l), Some(p)) if l > p => format!("slower: {l:.1} s vs {p:.1} s before"),
            (Some(l), Some(_)) => format!("same: {l:.1} s"),
            (Some(l), None) => format!("first recovery: {l:.1} s"),
            _ => "no recovery yet".into(),
        };
        s.push_str(&format!(
            "  {:<20} {} drill(s), {} recovered, {} right; median detect {}, mitigate {}, recover {}; last recovery {}\n",
            t.scenario,
            t.drills,
            t.recovered,
            t.right_action,
            secs(t.median_ttd_seconds),
            secs(t.median_ttm_seconds),
            secs(t.median_ttr_seconds),
            trend
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
