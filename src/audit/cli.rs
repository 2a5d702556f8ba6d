//! `kockpit audit verify|show`.

use std::path::PathBuf;

use super::{AuditError, default_path, format_entries, show, verify};

/// Arguments of `kockpit audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub action: AuditAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditAction {
    /// Recompute the hash chain; exit 1 naming the first bad line.
    Verify {
        /// Log file (default: $XDG_STATE_HOME/kockpit/audit.jsonl).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// List entries, one line per action.
    Show {
        /// Log file (default: $XDG_STATE_HOME/kockpit/audit.jsonl).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Only entries at or after this time (RFC 3339).
        #[arg(long, value_name = "RFC3339")]
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
pub fn run(args: AuditArgs) -> ! {
    match args.action {
        AuditAction::Verify { file } => {
            let path = file.unwrap_or_else(default_path);
            match verify(&path) {
                Ok(report) => {
                    println!("ok: {} entries, chain intact", report.entries);
                    for (line, id, action, object) in &report.dangling_intents {
                        println!("dangling intent: line {line}: {action} {object} (id {id})");
                    }
                    std::process::exit(0)
                }
                Err(AuditError::Broken { line, reason, .. }) => {
                    println!("line {line}: {reason}");
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
