//! The `edit` tool: exact, unique text replacement (one or several edits, all or nothing),
//! keeping the file's BOM, line endings and permissions, written atomically (temp file and
//! rename), answered with a unified diff.

use std::io::Write;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ToolContext, ToolError};

/// One replacement.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Replacement {
    /// Exact text to replace; must occur exactly once in the file.
    pub old_text: String,
    /// Text to put in its place.
    pub new_text: String,
}

/// Parameters of `edit`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditParams {
    /// Path of the file, relative to the workspace root or absolute (must be inside the workspace).
    pub path: String,
    /// Exact text to replace; it must occur exactly once (include surrounding lines to make it
    /// unique). Empty together with a path that does not exist creates the file with `new_text`.
    #[serde(default)]
    pub old_text: Option<String>,
    /// Replacement for `old_text`.
    #[serde(default)]
    pub new_text: Option<String>,
    /// Several replacements applied together, all or nothing (instead of, or after, old_text/new_text).
    #[serde(default)]
    pub edits: Option<Vec<Replacement>>,
}

const BOM: &str = "\u{feff}";

pub async fn edit(ctx: &ToolContext, p: EditParams) -> Result<String, ToolError> {
    let mut edits: Vec<Replacement> = Vec::new();
    match (p.old_text, p.new_text) {
        (Some(old_text), Some(new_text)) => edits.push(Replacement { old_text, new_text }),
        (None, None) => {}
        (Some(_), None) => {
            return Err(ToolError::new(
                "new_text is missing: give both old_text and new_text",
            ));
        }
        (None, Some(_)) => {
            return Err(ToolError::new(
                "old_text is missing: give both old_text and new_text (old_text \"\" creates a new file)",
            ));
        }
    }
    edits.extend(p.edits.unwrap_or_default());
    if edits.is_empty() {
        return Err(ToolError::new(
            "nothing to do: give old_text and new_text, or edits: [{old_text, new_text}, ...]",
        ));
    }
    let path = ctx
        .workspace
        .resolve(&p.path, true, ctx.guard.protected())?;
    ctx.check_access("edit", &path)?;
    let shown = p.path;
    tokio::task::spawn_blocking(move || apply(&path, &shown, &edits))
        .await
        .map_err(|e| ToolError::new(format!("edit failed: {e}")))?
}

fn apply(path: &Path, shown: &str, edits: &[Replacement]) -> Result<String, ToolError> {
    if !path.exists() {
        if edits.len() == 1 && edits[0].old_text.is_empty() {
            return create(path, shown, &edits[0].new_text);
        }
        return Err(ToolError::new(format!(
            "`{shown}` does not exist; to create it, call edit with old_text \"\" and the whole content as new_text"
        )));
    }
    if path.is_dir() {
        return Err(ToolError::new(format!(
            "`{shown}` is a directory, not a file"
        )));
    }
    let bytes =
        std::fs::read(path).map_err(|e| ToolError::new(format!("cannot read `{shown}`: {e}")))?;
    let raw = String::from_utf8(bytes).map_err(|_| {
        ToolError::new(format!(
            "`{shown}` is not UTF-8 text; edit only changes text files"
        ))
    })?;
    let (bom, body) = match raw.strip_prefix(BOM) {
        Some(rest) => (BOM, rest),
        None => ("", raw.as_str()),
    };
    let crlf = body.contains("\r\n");
    let original = if crlf {
        body.replace("\r\n", "\n")
    } else {
        body.to_string()
    };
    // Find every edit's unique span in the original, then apply them all at once.
    let mut spans: Vec<(usize, usize, String)> = Vec::new();
    for (i, e) in edits.iter().enumerate() {
        let label = if edits.len() > 1 {
            format!("edits[{i}]: ")
        } else {
            String::new()
        };
        let old = e.old_text.replace("\r\n", "\n");
        if old.is_empty() {
            return Err(ToolError::new(format!(
                "{label}old_text is empty; give the exact text to replace (an empty old_text only creates a file that does not exist yet)"
            )));
        }
        let count = original.matches(&old).count();
        match count {
            0 => {
                return Err(ToolError::new(format!(
                    "{label}old_text was not found in `{shown}`. It must match the file exactly, including whitespace and indentation; read the file again and copy the text{}",
                    if edits.len() > 1 {
                        ". No edit was applied."
                    } else {
                        "."
                    }
                )));
            }
            1 => {}
            n => {
                return Err(ToolError::new(format!(
                    "{label}old_text matches {n} places in `{shown}`; it must match exactly one. Include more surrounding lines in old_text to make it unique{}",
                    if edits.len() > 1 {
                        ". No edit was applied."
                    } else {
                        "."
                    }
                )));
            }
        }
        let start = original.find(&old).unwrap_or(0);
        spans.push((start, start + old.len(), e.new_text.replace("\r\n", "\n")));
    }
    spans.sort_by_key(|s| s.0);
    for w in spans.windows(2) {
        if w[0].1 > w[1].0 {
            return Err(ToolError::new(
                "two edits overlap; merge them into one edit. No edit was applied.",
            ));
        }
    }
    let mut updated = String::with_capacity(original.len());
    let mut at = 0;
    for (start, end, new) in &spans {
        updated.push_str(&original[at..*start]);
        updated.push_str(new);
        at = *end;
    }
    updated.push_str(&original[at..]);
    if updated == original {
        return Err(ToolError::new(
            "old_text and new_text are identical; nothing would change",
        ));
    }
    let on_disk = if crlf {
        updated.replace('\n', "\r\n")
    } else {
        updated.clone()
    };
    write_atomic(path, &format!("{bom}{on_disk}"), shown)?;
    let diff = similar::TextDiff::from_lines(&original, &updated)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{shown}"), &format!("b/{shown}"))
        .to_string();
    Ok(format!(
        "Edited `{shown}`: {} replacement{}.\n\n{diff}",
        spans.len(),
        if spans.len() == 1 { "" } else { "s" }
    ))
}

fn create(path: &Path, shown: &str, content: &str) -> Result<String, ToolError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            ToolError::new(format!("cannot create the directory for `{shown}`: {e}"))
        })?;
    }
    write_atomic(path, content, shown)?;
    let diff = similar::TextDiff::from_lines("", content)
        .unified_diff()
        .header("/dev/null", &format!("b/{shown}"))
        .to_string();
    Ok(format!(
        "Created `{shown}` ({} bytes).\n\n{diff}",
        content.len()
    ))
}

/// Writes through a temp file in the same directory and renames it over the target, keeping the
/// target's permissions.
fn write_atomic(path: &Path, content: &str, shown: &str) -> Result<(), ToolError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| ToolError::new(format!("cannot write `{shown}`: {e}"));
    let mut tmp = tempfile::Builder::new()
        .prefix(".pi-mcp-edit-")
        .tempfile_in(dir)
        .map_err(fail)?;
    tmp.write_all(content.as_bytes()).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions()).map_err(fail)?;
    }
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}
