//! `kockpit audit verify|show`.

use std::path::PathBuf;

use super::{
    AnchorState, AuditError, VerifyOptions, anchor_path, default_path, format_entries, show,
    verify_with,
};

/// Arguments of `kockpit audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub action: AuditAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditAction {
    /// Recompute the hash chain and compare the end with the head anchor (FILE.head); exit 1
    /// naming the first bad line.
    Verify {
        /// Log file (default: $XDG_STATE_HOME/kockpit/audit.jsonl).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Fail (exit 1) when a non-empty log has no head anchor, instead of warning.
        #[arg(long)]
        strict: bool,
    },
    /// List entries, one line per action.
    Show {
        /// Log file (default: $XDG_STATE_HOME/kockpit/audit.jsonl).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Only entries at or after this time: RFC 3339 (2026-11-22T02:10:00Z), or an age
        /// back from now (30m, 2h, 1d, 1w, 1h30m; units s, m, h, d, w).
        #[arg(long, value_name = "WHEN", value_parser = parse_since)]
        since: Option<jiff::Timestamp>,
        /// Only entries for this environment.
        #[arg(long, value_name = "NAME")]
        env: Option<String>,
        /// Print the raw JSON lines instead.
        #[arg(long)]
        json: bool,
    },
}

/// Run `kockpit audit`. Exits 1 on a broken chain, 2 on other errors.
pub fn run(args: AuditArgs, fallback: Option<PathBuf>) -> ! {
    // The global `--audit-log` (or the config's `audit_log`) when `--file` is not given:
    // verifying another file than the one written would be worse than an error.
    let default_path = || fallback.clone().unwrap_or_else(default_path);
    match args.action {
        AuditAction::Verify { file, strict } => {
            let path = file.unwrap_or_else(default_path);
            match verify_with(&path, VerifyOptions { strict }) {
                Ok(report) => {
                    println!("ok: {} entries, chain intact", report.entries);
                    match report.anchor {
                        AnchorState::Empty | AnchorState::Matches => {}
                        AnchorState::OneBehind => println!(
                            "note: the head anchor is one line behind (an append stopped after writing line {}); the next append updates it",
                            report.entries
                        ),
                        AnchorState::Missing => println!(
                            "warning: no head anchor ({}): the removal of the last lines cannot be detected (a log from before head anchors, or the anchor was deleted; the next append writes one; --strict makes this a failure)",
                            anchor_path(&path).display()
                        ),
                    }
                    for (line, id, action, object) in &report.dangling_intents {
                        println!("dangling intent: line {line}: {action} {object} (id {id})");
                    }
                    std::process::exit(0)
                }
                Err(AuditError::Broken { line, reason, .. }) => {
                    println!("line {line}: {reason}");
                    std::process::exit(1)
                }
                Err(AuditError::Anchor {
                    anchor, problem, ..
                }) => {
                    println!("head anchor {}: {problem}", anchor.display());
                    std::process::exit(1)
                }
                Err(e) => {
                    eprintln!("kockpit: {e}");
                    std::process::exit(2)
                }
            }
        }
        AuditAction::Show {
            file,
            since,
            env,
            json,
        } => {
            let path = file.unwrap_or_else(default_path);
            let entries = match show(&path, since, env.as_deref()) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("kockpit: {e}");
                    std::process::exit(2)
                }
            };
            if json {
                for e in &entries {
                    match serde_json::to_string(e) {
                        Ok(s) => println!("{s}"),
                        Err(err) => {
                            eprintln!("kockpit: {err}");
                            std::process::exit(2)
                        }
                    }
                }
            } else {
                for line in format_entries(&entries) {
                    println!("{line}");
                }
            }
            std::process::exit(0)
        }
    }
}

/// Why a `--since` value was rejected.
const SINCE_FORMS: &str = "expected an RFC 3339 time (2026-11-22T02:10:00Z, 2026-11-22T03:10:00+01:00) or an age back from now (30m, 2h, 1d, 1w, 1h30m; units s, m, h, d, w)";

/// `--since`: an RFC 3339 time, or an age back from now.
fn parse_since(s: &str) -> Result<jiff::Timestamp, String> {
    since_at(s, jiff::Timestamp::now())
}

fn since_at(s: &str, now: jiff::Timestamp) -> Result<jiff::Timestamp, String> {
    let s = s.trim();
    match age_secs(s) {
        Ok(secs) => {
            return jiff::SignedDuration::from_secs(secs)
                .checked_neg()
                .and_then(|d| now.checked_add(d).ok())
                .ok_or_else(|| format!("{s} is too far back"));
        }
        Err(Some(e)) => return Err(e),
        Err(None) => {}
    }
    s.parse::<jiff::Timestamp>().map_err(|e| {
        if s.contains(['-', ':']) {
            format!("{SINCE_FORMS}; as a time: {e}")
        } else {
            SINCE_FORMS.to_string()
        }
    })
}

/// Seconds in an age such as `2h` or `1h30m`; `Err(None)` if `s` is not one, `Err(Some(_))` if
/// it is one but too large.
fn age_secs(s: &str) -> Result<i64, Option<String>> {
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return Err(None);
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(None);
        }
        let (num, after) = rest.split_at(digits);
        let mut chars = after.chars();
        let unit: i64 = match chars.next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            Some('w') => 7 * 86_400,
            _ => return Err(None),
        };
        let too_far = || Some(format!("{s} is too far back"));
        let n: i64 = num.parse().map_err(|_| too_far())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(too_far)?;
        rest = chars.as_str();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> jiff::Timestamp {
        "2026-11-22T12:00:00Z"
            .parse()
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    fn at(s: &str) -> Result<String, String> {
        since_at(s, now()).map(|t| t.to_string())
    }

    #[test]
    fn since_accepts_ages() {
        assert_eq!(at("2h"), Ok("2026-11-22T10:00:00Z".into()));
        assert_eq!(at("30m"), Ok("2026-11-22T11:30:00Z".into()));
        assert_eq!(at("1d"), Ok("2026-11-21T12:00:00Z".into()));
        assert_eq!(at("1w"), Ok("2026-11-15T12:00:00Z".into()));
        assert_eq!(at("45s"), Ok("2026-11-22T11:59:15Z".into()));
        assert_eq!(at("1h30m"), Ok("2026-11-22T10:30:00Z".into()));
        assert_eq!(at(" 0m "), Ok("2026-11-22T12:00:00Z".into()));
    }

    #[test]
    fn since_accepts_rfc3339() {
        assert_eq!(
            at("2026-11-22T02:10:03Z"),
            Ok("2026-11-22T02:10:03Z".into())
        );
        assert_eq!(
            at("2026-11-22T03:10:03+01:00"),
            Ok("2026-11-22T02:10:03Z".into())
        );
    }

    #[test]
    fn since_rejects_anything_else_clearly() {
        for bad in ["", "2", "h", "2x", "2 h", "-2h", "2h-", "yesterday", "1.5h"] {
            let e = at(bad).err().unwrap_or_default();
            assert!(e.starts_with("expected an RFC 3339 time"), "{bad:?}: {e}");
            assert!(e.contains("30m, 2h, 1d"), "{bad:?}: {e}");
        }
        // A time without an offset says what jiff found wrong.
        let e = at("2026-11-22T02:10:03").err().unwrap_or_default();
        assert!(e.contains("; as a time: "), "{e}");
        for big in ["99999999999999999999s", "999999999999999w"] {
            let e = at(big).err().unwrap_or_default();
            assert!(e.ends_with("is too far back"), "{big}: {e}");
        }
        // Within i64 seconds but before jiff's earliest timestamp.
        let e = at("1000000000w").err().unwrap_or_default();
        assert!(e.ends_with("is too far back"), "{e}");
    }
}
