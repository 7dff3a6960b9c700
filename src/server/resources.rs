//! MCP resources: the policy in force (`pi-mcp://policy`), the alert rules with their current
//! states (`pi-mcp://alerts`, `pi-mcp://alerts/<id>`), the newest report per database
//! (`pi-mcp://reports/<database>/latest`) and every file under `reports/` (`file://` URIs),
//! readable by URI; the two per-name families are also offered as resource templates. The
//! approvals (`pi-mcp://approvals`) show what waits for a human. Every one of these is live:
//! see `live` and `subscriptions`.

use std::path::{Path, PathBuf};

use base64::Engine;
use rmcp::ErrorData;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};

use super::PiServer;

pub const POLICY_URI: &str = "pi-mcp://policy";
/// The pending approvals, then the newest decided ones.
pub const APPROVALS_URI: &str = "pi-mcp://approvals";
/// How many approvals `pi-mcp://approvals` shows.
pub const APPROVALS_SHOWN: i64 = 100;
/// One alert rule, its state and recent values.
pub const ALERT_TEMPLATE: &str = "pi-mcp://alerts/{rule}";
/// The newest Data Ghost report of a database (`reports/<database>/latest.md`).
pub const REPORT_TEMPLATE: &str = "pi-mcp://reports/{database}/latest";
pub const REPORTS_URI: &str = "pi-mcp://reports/";
pub const LATEST_REPORT: &str = "latest.md";
/// Most report files listed.
pub const MAX_LISTED_REPORTS: usize = 1000;

fn mime_of(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "md" => "text/markdown",
        "json" => "application/json",
        "jsonl" => "application/x-ndjson",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "csv" => "text/csv",
        "html" => "text/html",
        _ => "text/plain",
    }
}

/// Every report file under `dir`, newest first, at most [`MAX_LISTED_REPORTS`]: files outside
/// a run (every `reports/<database>/latest.md`) come first, then runs by their UTC stamp
/// (`reports/<database>/<stamp>/…`, `reports/agent/<stamp>-<mode>.md`), newest first, so the
/// cap drops the oldest runs, never the newest.
fn report_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep") {
                out.push(p);
            }
        }
    }
    let mut keyed: Vec<(Option<String>, PathBuf)> = out
        .into_iter()
        .map(|p| (run_stamp(p.strip_prefix(dir).unwrap_or(&p)), p))
        .collect();
    keyed.sort_by(|(sa, pa), (sb, pb)| match (sa, sb) {
        (None, None) => pa.cmp(pb),
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(a), Some(b)) => b.cmp(a).then_with(|| pa.cmp(pb)),
    });
    keyed.truncate(MAX_LISTED_REPORTS);
    keyed.into_iter().map(|(_, p)| p).collect()
}

/// The UTC stamp (`20261125T163304.440Z`) that names the run a report file belongs to: the
/// first path component that starts with `YYYYMMDDTHHMMSS`; `None` for files outside a run.
fn run_stamp(relative: &Path) -> Option<String> {
    relative.components().find_map(|c| {
        let name = c.as_os_str().to_str()?;
        let b = name.as_bytes();
        let stamp = b.len() >= 15
            && b[..8].iter().all(u8::is_ascii_digit)
            && b[8] == b'T'
            && b[9..15].iter().all(u8::is_ascii_digit);
        stamp.then(|| name.to_string())
    })
}

fn file_uri(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// The resource templates, whose parameters `completion/complete` completes.
pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(ALERT_TEMPLATE, "alert")
            .with_title("An alert rule and its state")
            .with_description("An alert rule's definition, current state, value and cooldown")
            .with_mime_type("application/json"),
        ResourceTemplate::new(REPORT_TEMPLATE, "latest-report")
            .with_title("The newest Data Ghost report of a database")
            .with_description("reports/<database>/latest.md, as the last Data Ghost run wrote it")
            .with_mime_type("text/markdown"),
    ]
}

/// The databases with a newest report (`reports/<database>/latest.md`), sorted.
pub fn latest_report_databases(reports_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(reports_dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join(LATEST_REPORT).is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

/// `pi-mcp://reports/<database>/latest`: the text of `reports/<database>/latest.md`.
fn read_latest_report(server: &PiServer, uri: &str) -> Option<ReadResourceResult> {
    let database = uri.strip_prefix(REPORTS_URI)?.strip_suffix("/latest")?;
    // One path component: no separators, no `..`.
    if database.is_empty() || database.contains(['/', '\\']) || database == ".." || database == "."
    {
        return None;
    }
    let base = server.reports_dir.canonicalize().ok()?;
    let real = base
        .join(database)
        .join(LATEST_REPORT)
        .canonicalize()
        .ok()?;
    if !real.starts_with(&base) {
        return None;
    }
    let text = std::fs::read_to_string(&real).ok()?;
    Some(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type("text/markdown"),
    ]))
}

pub fn list(server: &PiServer) -> Vec<Resource> {
    let mut out = vec![
        Resource::new(POLICY_URI, "policy")
            .with_title("Security policy in force")
            .with_description(format!(
                "The gatekeeper's policy, from {}",
                server.tools.guard.source()
            ))
            .with_mime_type("application/json"),
    ];
    out.push(
        Resource::new(APPROVALS_URI, "approvals")
            .with_title("Approvals")
            .with_description(
                "Commands waiting for a human decision, then the newest decided ones \
                 (subscribe to hear when one is created or decided)",
            )
            .with_mime_type("application/json"),
    );
    let root = server.tools.workspace.primary();
    let alerts = crate::monitor::mcp::rule_names(root);
    if !alerts.is_empty() {
        out.push(
            Resource::new(crate::monitor::mcp::ALERTS_URI, "alerts")
                .with_title("Alert rules and their states")
                .with_description("Every alert rule with its current state, value and cooldown")
                .with_mime_type("application/json"),
        );
    }
    for (id, name) in alerts {
        out.push(
            Resource::new(format!("{}/{id}", crate::monitor::mcp::ALERTS_URI), id)
                .with_title(name)
                .with_description("An alert rule, its state and recent values")
                .with_mime_type("application/json"),
        );
    }
    let base = &server.reports_dir;
    for p in report_files(base) {
        let name = p.strip_prefix(base).unwrap_or(&p).display().to_string();
        let size = std::fs::metadata(&p).map(|m| m.len()).ok();
        let mut r = Resource::new(file_uri(&p), name)
            .with_description("A pi-mcp report")
            .with_mime_type(mime_of(&p));
        r.size = size;
        out.push(r);
    }
    out
}

pub fn read(server: &PiServer, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    if uri == POLICY_URI {
        let text = serde_json::to_string_pretty(server.tools.guard.file())
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        return Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, uri).with_mime_type("application/json"),
        ]));
    }
    let not_found = || {
        resource_not_found(
            uri,
            format!("no resource `{uri}`; resources/list shows what exists"),
        )
    };
    if uri.starts_with(REPORTS_URI) {
        return read_latest_report(server, uri).ok_or_else(|| {
            resource_not_found(
                uri,
                format!(
                    "no newest report at `{uri}`; databases with one: {} (completion/complete \
                     on {REPORT_TEMPLATE} lists them)",
                    latest_report_databases(&server.reports_dir).join(", ")
                ),
            )
        });
    }
    let path = uri.strip_prefix("file://").ok_or_else(not_found)?;
    let base = server.reports_dir.canonicalize().map_err(|_| not_found())?;
    let real = Path::new(path).canonicalize().map_err(|_| not_found())?;
    if !real.starts_with(&base) || !real.is_file() {
        return Err(not_found());
    }
    let bytes = std::fs::read(&real).map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    let mime = mime_of(&real);
    let contents = match String::from_utf8(bytes) {
        Ok(text) if !mime.starts_with("image/") => {
            ResourceContents::text(text, uri).with_mime_type(mime)
        }
        Ok(text) => ResourceContents::blob(
            base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
            uri,
        )
        .with_mime_type(mime),
        Err(e) => ResourceContents::blob(
            base64::engine::general_purpose::STANDARD.encode(e.as_bytes()),
            uri,
        )
        .with_mime_type(mime),
    };
    Ok(ReadResourceResult::new(vec![contents]))
}

/// `pi-mcp://approvals`: pending approvals first (oldest first: the next to expire), then the
/// newest decided, used or expired ones.
pub async fn read_approvals(server: &PiServer) -> Result<ReadResourceResult, ErrorData> {
    let all = crate::store::approvals::list(server.audit.store(), APPROVALS_SHOWN)
        .await
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    let (mut pending, decided): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|a| a.status == "pending");
    pending.reverse();
    let text = serde_json::to_string_pretty(&serde_json::json!({
        "pending": pending,
        "decided": decided,
        "decide_with": "pi-mcp approvals approve|deny <id> --reason <why>",
    }))
    .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, APPROVALS_URI).with_mime_type("application/json"),
    ]))
}

/// The resource-not-found error with the URI in `data` (SEP-2164), so a client can tell which of
/// its reads failed without parsing the message.
fn resource_not_found(uri: &str, message: String) -> ErrorData {
    ErrorData::resource_not_found(message, Some(serde_json::json!({ "uri": uri })))
}

/// `pi-mcp://alerts` and `pi-mcp://alerts/<id>`.
pub async fn read_alerts(server: &PiServer, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let root = server.tools.workspace.primary();
    match crate::monitor::mcp::read(server.audit.store(), root, uri).await {
        Ok(Some(v)) => {
            let text = serde_json::to_string_pretty(&v)
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            Ok(ReadResourceResult::new(vec![
                ResourceContents::text(text, uri).with_mime_type("application/json"),
            ]))
        }
        Ok(None) => Err(resource_not_found(
            uri,
            format!("no alert rule at `{uri}`; read pi-mcp://alerts for the list"),
        )),
        Err(e) => Err(ErrorData::internal_error(e, None)),
    }
}

/// For the `sre` prompt given a `rule` id: the rule's state and recent values replace the id,
/// and the incident defaults to the alert.
pub async fn with_alert_context(
    server: &PiServer,
    prompt: &str,
    mut args: serde_json::Map<String, serde_json::Value>,
) -> Result<serde_json::Map<String, serde_json::Value>, ErrorData> {
    let Some(id) = args
        .get("rule")
        .and_then(|v| v.as_str())
        .map(str::to_string)
    else {
        return Ok(args);
    };
    if prompt != "sre" || id.is_empty() {
        return Ok(args);
    }
    let root = server.tools.workspace.primary();
    let context = crate::monitor::mcp::rule_context(server.audit.store(), root, &id)
        .await
        .map_err(|e| ErrorData::invalid_params(e, None))?;
    if args
        .get("incident")
        .is_none_or(|v| v.as_str().is_some_and(str::is_empty))
    {
        args.insert("incident".into(), format!("alert rule `{id}`").into());
    }
    args.insert("rule".into(), context.into());
    Ok(args)
}
