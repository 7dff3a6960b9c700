//! Files sent along with a notification: loaded once before the first attempt, refused when
//! the policy protects them (keys, `.env`, credentials) or when together they exceed
//! [`MAX_ATTACHMENT_BYTES`], and typed by extension for email.

use std::path::{Path, PathBuf};

use crate::guard::{Decision, Guard, Verdict};

use super::NotifyError;

/// Largest total size of a notification's attachments (common mail servers refuse more).
pub const MAX_ATTACHMENT_BYTES: u64 = 20 * 1024 * 1024;

/// One loaded attachment.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub name: String,
    pub mime: &'static str,
    pub bytes: Vec<u8>,
}

/// The MIME type email gives a file, by extension.
pub fn mime_for(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "md" | "markdown" => "text/markdown",
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "html" => "text/html",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// Loads `paths`, refusing protected files and oversized sets.
pub async fn load(guard: &Guard, paths: &[PathBuf]) -> Result<Vec<Attachment>, NotifyError> {
    let mut out = Vec::with_capacity(paths.len());
    let mut total = 0u64;
    for path in paths {
        if let Some(pattern) = guard.protected().matches(path) {
            let message = format!(
                "`{}` is protected by policy pattern `{pattern}` and cannot be attached",
                path.display()
            );
            return Err(NotifyError::denied(
                message.clone(),
                Verdict::single(Decision::Deny, "protected-path", message),
            ));
        }
        let unreadable = |e: std::io::Error| {
            NotifyError::permanent(format!("cannot read attachment `{}`: {e}", path.display()))
        };
        // Sized before it is read: a huge file is refused without loading it, and a FIFO or a
        // device (which would block or never end) is not a file at all.
        let meta = tokio::fs::metadata(path).await.map_err(unreadable)?;
        if !meta.is_file() {
            return Err(NotifyError::permanent(format!(
                "attachment `{}` is not a regular file",
                path.display()
            )));
        }
        if total + meta.len() > MAX_ATTACHMENT_BYTES {
            return Err(NotifyError::permanent(format!(
                "attachments exceed {} MiB together; attach fewer or smaller files",
                MAX_ATTACHMENT_BYTES / (1024 * 1024)
            )));
        }
        let mut bytes = Vec::new();
        let file = tokio::fs::File::open(path).await.map_err(unreadable)?;
        tokio::io::AsyncReadExt::read_to_end(
            &mut tokio::io::AsyncReadExt::take(file, MAX_ATTACHMENT_BYTES - total + 1),
            &mut bytes,
        )
        .await
        .map_err(unreadable)?;
        total += bytes.len() as u64;
        if total > MAX_ATTACHMENT_BYTES {
            return Err(NotifyError::permanent(format!(
                "attachments exceed {} MiB together; attach fewer or smaller files",
                MAX_ATTACHMENT_BYTES / (1024 * 1024)
            )));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".into());
        out.push(Attachment {
            name,
            mime: mime_for(path),
            bytes,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_by_extension() {
        assert_eq!(mime_for(Path::new("r/chart.PNG")), "image/png");
        assert_eq!(mime_for(Path::new("report.md")), "text/markdown");
        assert_eq!(mime_for(Path::new("dump.bin")), "application/octet-stream");
        assert_eq!(mime_for(Path::new("noext")), "application/octet-stream");
    }

    #[tokio::test]
    async fn protected_and_oversized_attachments_are_refused() {
        let guard = Guard::load(None).expect("built-in policy");
        let dir = tempfile::tempdir().expect("tempdir");
        let env = dir.path().join(".env");
        std::fs::write(&env, "SECRET=1").expect("write");
        let err = load(&guard, &[env]).await.expect_err("protected");
        assert_eq!(err.verdict.map(|v| v.decision), Some(Decision::Deny));
        let big = dir.path().join("big.bin");
        let file = std::fs::File::create(&big).expect("create");
        file.set_len(MAX_ATTACHMENT_BYTES + 1).expect("sparse file");
        let err = load(&guard, &[big]).await.expect_err("too big");
        assert!(
            err.message.contains("20 MiB") && !err.transient,
            "{}",
            err.message
        );
    }
}
