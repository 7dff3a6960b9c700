//! `pi-mcp monitor`: evaluate the rules once and print a table (or JSON), `monitor schema`
//! prints the rules file's JSON Schema, `monitor validate` checks a rules file, `monitor chart`
//! draws a rule's recent values against its threshold.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::evaluate::{Evaluation, MonitorError};
use super::validate::{self, LoadedRules};
use crate::app::{App, Globals};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MonitorArgs {
    #[command(subcommand)]
    pub action: Option<MonitorAction>,
    /// Rules file (relative paths are relative to the first workspace root).
    #[arg(long, env = "PI_MCP_ALERTS", default_value = super::DEFAULT_RULES_FILE)]
    pub rules: PathBuf,
    /// Evaluate and show what would happen: send nothing, change no state.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the evaluation as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum MonitorAction {
    /// Print the JSON Schema of the rules file.
    Schema,
    /// Check a rules file and report every problem with its file, line, column, rule and field.
    Validate {
        /// Rules file (default: configs/alerts.json in the workspace).
        #[arg(long, env = "PI_MCP_ALERTS", default_value = super::DEFAULT_RULES_FILE)]
        rules: PathBuf,
    },
    /// Draw a rule's recent values and its threshold as a PNG
    /// (default: <reports>/alerts/<rule>.png).
    Chart {
        /// The rule's id.
        rule: String,
        /// Rules file (default: configs/alerts.json in the workspace).
        #[arg(long, env = "PI_MCP_ALERTS", default_value = super::DEFAULT_RULES_FILE)]
        rules: PathBuf,
        /// Where to write the PNG.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// The rules file `path` names, relative paths taken from the first workspace root.
pub fn resolve(globals: &Globals, path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(globals.workspace()?.primary().join(path))
}

/// Loads `path`, logging each bad rule once; fails only when the whole file is unusable.
pub fn load_reporting(path: &Path) -> anyhow::Result<LoadedRules> {
    let loaded = validate::load(path)?;
    for p in &loaded.problems {
        tracing::error!("skipping a rule: {p}");
    }
    Ok(loaded)
}

pub async fn run(globals: &Globals, args: &MonitorArgs) -> anyhow::Result<ExitCode> {
    match &args.action {
        Some(MonitorAction::Schema) => {
            println!("{}", serde_json::to_string_pretty(&super::rules::schema())?);
            Ok(ExitCode::SUCCESS)
        }
        Some(MonitorAction::Validate { rules }) => {
            let path = resolve(globals, rules)?;
            let loaded = validate::load(&path)?;
            for p in &loaded.problems {
                println!("{p}");
            }
            let enabled = loaded.rules.iter().filter(|r| r.spec.enabled).count();
            println!(
                "{}: {} valid rules ({enabled} enabled), {} with problems",
                path.display(),
                loaded.rules.len(),
                loaded.problems.len()
            );
            Ok(if loaded.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Some(MonitorAction::Chart { rule, rules, out }) => {
            chart(globals, rule, rules, out.as_deref()).await
        }
        None => {
            let path = resolve(globals, &args.rules)?;
            let loaded = load_reporting(&path)?;
            let app = App::open(globals, false).await?;
            let monitor = super::wiring::monitor(&app, "cli").await;
            let (evaluation, delivery) = if args.dry_run {
                (monitor.dry_run(&loaded.rules).await?, None)
            } else {
                match monitor.beat(&loaded.rules).await {
                    Ok((e, d)) => (e, Some(d)),
                    Err(MonitorError::Busy(busy)) => {
                        app.audit.flush().await;
                        eprintln!(
                            "pi-mcp monitor: not evaluated: {busy}. Try again when it is done, or \
                             use --dry-run to see what it would do."
                        );
                        return Ok(ExitCode::FAILURE);
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            app.audit.flush().await;
            if args.json {
                let mut v = serde_json::to_value(&evaluation)?;
                v["delivery"] = serde_json::to_value(delivery)?;
                v["problems"] = serde_json::to_value(&loaded.problems)?;
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_table(&evaluation);
                if let Some(d) = delivery {
                    println!(
                        "notifications: {} delivered, {} kept in the outbox, {} refused",
                        d.delivered, d.deferred, d.failed
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `monitor chart`: the rule's stored recent values against its threshold, as a PNG.
async fn chart(
    globals: &Globals,
    id: &str,
    rules: &Path,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let loaded = load_reporting(&resolve(globals, rules)?)?;
    let Some(rule) = loaded.rules.iter().find(|r| r.id() == id) else {
        let ids: Vec<&str> = loaded.rules.iter().map(|r| r.id()).collect();
        anyhow::bail!(
            "no valid rule `{id}` in the rules file (rules: {})",
            ids.join(", ")
        );
    };
    let app = App::open(globals, false).await?;
    let Some(state) = super::state::load_one(&app.store, id).await? else {
        anyhow::bail!("rule `{id}` has not been evaluated yet: run `pi-mcp monitor` first");
    };
    let path = match out {
        Some(p) => p.to_path_buf(),
        None => {
            let name: String = id
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            app.reports_dir.join("alerts").join(format!("{name}.png"))
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    super::chart::render(&path, rule, &state)?;
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn print_table(e: &Evaluation) {
    let header = if e.dry_run { "WOULD NOTIFY" } else { "NOTIFY" };
    println!(
        "{:<28} {:<8} {:>12}  {:<24} {header}",
        "RULE", "STATE", "VALUE", "CONDITION"
    );
    for r in &e.rules {
        let value = r
            .value
            .map_or_else(|| "-".to_string(), |v| format!("{v:.6}"));
        let value = value
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string();
        let notify = match (r.notice, r.suppressed) {
            _ if r.silence.is_some() => match r.muted {
                Some(n) => format!("no (silenced; muted {})", n.as_str()),
                None => "no (silenced)".into(),
            },
            (Some(n), _) => {
                let channels: Vec<&str> = r.channels.iter().map(|c| c.as_str()).collect();
                format!("{} -> {}", n.as_str(), channels.join(","))
            }
            (None, true) => "no (cooldown)".into(),
            (None, false) => "no".into(),
        };
        let state = r.state.as_str();
        println!(
            "{:<28} {state:<8} {value:>12}  {:<24} {notify}",
            r.rule, r.condition
        );
        if let Some(p) = &r.problem {
            println!("{:<28} error: {p}", "");
        }
    }
    println!(
        "{} rules in {} ms ({} CloudWatch calls){}",
        e.rules.len(),
        e.duration_ms,
        e.metric_calls,
        if e.dry_run {
            "; dry run: nothing sent, no state changed"
        } else {
            ""
        }
    );
}
