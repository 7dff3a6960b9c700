//! The `read` tool: a text file by line window (1-based `offset`, `limit`), capped at
//! [`MAX_LINES`] lines or [`MAX_BYTES`] bytes with a hint on how to continue, or an image as
//! image content.

use std::io::{BufRead, BufReader, Read, Seek};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::output::{MAX_BYTES, MAX_LINES};
use super::{ToolContext, ToolError};

/// Files up to this size are read without moving to the blocking thread pool.
pub const INLINE_READ_BYTES: u64 = 256 * 1024;

/// Largest image returned as image content.
pub const MAX_IMAGE_BYTES: u64 = 10 * 1024 * 1024;

/// Parameters of `read`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadParams {
    /// Path of the file, relative to the workspace root or absolute (must be inside the workspace).
    pub path: String,
    /// 1-based line number to start from (default 1).
    #[serde(default)]
    pub offset: Option<usize>,
    /// Maximum number of lines to return (default and cap: 2000 lines or 50 KiB).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// What `read` returns.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadOutput {
    Text(String),
    Image { mime: &'static str, data: Vec<u8> },
}

/// The MIME type of an image by its magic bytes.
pub fn image_mime(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

pub async fn read(ctx: &ToolContext, p: ReadParams) -> Result<ReadOutput, ToolError> {
    let mut file = resolve_and_open(ctx, &p.path)?;
    if p.offset == Some(0) {
        return Err(ToolError::new(
            "offset is 1-based: use offset=1 for the first line",
        ));
    }
    if p.limit == Some(0) {
        return Err(ToolError::new("limit must be at least 1"));
    }
    let offset = p.offset.unwrap_or(1);
    // Checked on the open handle, so what is checked is what is read.
    let meta = file
        .metadata()
        .map_err(|e| ToolError::new(format!("cannot read `{}`: {e}", p.path)))?;
    if meta.is_dir() {
        return Err(ToolError::new(format!(
            "`{}` is a directory; use bash with `ls {}` to list it",
            p.path, p.path
        )));
    }
    if !meta.is_file() {
        return Err(ToolError::new(format!(
            "`{}` is not a regular file (a FIFO, socket or device); read only reads files",
            p.path
        )));
    }
    // A small file is read on the runtime's thread, whole, in one read: the hop to the
    // blocking pool and back costs more than the read (a page-cache copy of a few KiB).
    if meta.len() <= INLINE_READ_BYTES {
        let data = read_whole(&mut file, meta.len())
            .map_err(|e| ToolError::new(format!("cannot read `{}`: {e}", p.path)))?;
        drop(file);
        if let Some(mime) = image_mime(&data[..data.len().min(16)]) {
            return Ok(ReadOutput::Image { mime, data });
        }
        return text_lines(&data[..], &p.path, offset, p.limit);
    }
    let shown = p.path.clone();
    tokio::task::spawn_blocking(move || read_opened(file, meta.len(), &shown, offset, p.limit))
        .await
        .map_err(|e| ToolError::new(format!("read failed: {e}")))?
}

/// The file `shown` names, judged (inside the workspace, not protected, allowed by the
/// policy) and opened for reading by a walk that follows no symbolic link, so that what was
/// judged is what is read: a link swapped in after the judgement fails the open instead of
/// being followed. Opened without blocking (a FIFO cannot stall the runtime).
///
/// With no link on the way (the common case) the path as written is its own canonical form:
/// it is judged first, then opened, and the open proves it (one system call where resolving,
/// then opening, took four; issue 14). Otherwise it is resolved (links followed, `..` taken),
/// judged, and its canonical path, which has no link on its way, is opened the same way.
fn resolve_and_open(ctx: &ToolContext, shown: &str) -> Result<std::fs::File, ToolError> {
    use crate::guard::links::{open_judged, open_without_links};
    use nix::errno::Errno;
    use nix::fcntl::OFlag;
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let protected = ctx.guard.protected();
    if let Some(path) = ctx.workspace.unlinked(shown, protected)
        && ctx.check_access("read", &path).is_ok()
        && let Ok(file) = open_without_links(&path, flags)
    {
        return Ok(file);
    }
    let path = ctx.workspace.resolve(shown, false, protected)?;
    ctx.check_access("read", &path)?;
    match open_judged(&path, flags) {
        Ok(file) => Ok(file),
        Err(Errno::ELOOP) => Err(ToolError::new(format!(
            "`{shown}` changed while it was being opened (a symbolic link appeared on its way); \
             nothing was read: try again"
        ))),
        Err(e) => Err(ToolError::new(format!(
            "cannot open `{shown}`: {}",
            std::io::Error::from(e)
        ))),
    }
}

/// The rest of `file`, expected to be `len` bytes (it may have changed since). Not
/// `read_to_end`, which asks the file for its size and position again (`statx`, `lseek`)
/// although the caller has just looked, and reads once more to see the end: three of a small
/// `read`'s system calls. Here the end is where the size said, unless the file was found to
/// be longer (the buffer has a byte to spare to see that) or shorter (a read comes back empty).
fn read_whole(file: &mut std::fs::File, len: u64) -> std::io::Result<Vec<u8>> {
    let mut data = vec![0u8; len as usize + 1];
    let mut filled = 0;
    let mut grew = false;
    loop {
        match file.read(&mut data[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if filled as u64 == len && !grew {
                    break;
                }
                if filled == data.len() {
                    grew = true;
                    // It grew: room for as much again.
                    data.resize(filled * 2, 0);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    data.truncate(filled);
    Ok(data)
}

/// Reads an opened regular file of `len` bytes: as an image when its first bytes say so, else
/// as text lines.
fn read_opened(
    mut file: std::fs::File,
    len: u64,
    shown: &str,
    offset: usize,
    limit: Option<usize>,
) -> Result<ReadOutput, ToolError> {
    let mut head = [0u8; 16];
    let n = file
        .read(&mut head)
        .map_err(|e| ToolError::new(format!("cannot read `{shown}`: {e}")))?;
    if let Some(mime) = image_mime(&head[..n]) {
        if len > MAX_IMAGE_BYTES {
            return Err(ToolError::new(format!(
                "`{shown}` is an image of {len} bytes; images over {MAX_IMAGE_BYTES} bytes are not returned"
            )));
        }
        let mut data = Vec::new();
        file.rewind()
            .and_then(|()| file.read_to_end(&mut data))
            .map_err(|e| ToolError::new(format!("cannot read `{shown}`: {e}")))?;
        return Ok(ReadOutput::Image { mime, data });
    }
    file.rewind()
        .map_err(|e| ToolError::new(format!("cannot read `{shown}`: {e}")))?;
    text_lines(BufReader::new(file), shown, offset, limit)
}

/// The text window of `reader` (from line `offset`, at most `limit` lines and the byte cap),
/// with a hint on how to continue when cut.
fn text_lines(
    mut reader: impl BufRead,
    shown: &str,
    offset: usize,
    limit: Option<usize>,
) -> Result<ReadOutput, ToolError> {
    let want = limit.unwrap_or(MAX_LINES).min(MAX_LINES);
    let mut line_no = 0usize;
    let mut out = String::new();
    let mut shown_lines = 0usize;
    let mut cut_by_bytes = false;
    let mut oversized_line: Option<(usize, usize)> = None;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| ToolError::new(format!("cannot read `{shown}`: {e}")))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if line_no < offset || shown_lines == want || cut_by_bytes || oversized_line.is_some() {
            continue;
        }
        let line = std::str::from_utf8(&buf).map_err(|_| {
            ToolError::new(format!("`{shown}` is not UTF-8 text (line {line_no} has invalid bytes); it may be binary. Use bash (e.g. `file`, `xxd | head`) to inspect it"))
        })?;
        if line.contains('\0') {
            return Err(ToolError::new(format!(
                "`{shown}` looks binary (NUL byte on line {line_no}); use bash (e.g. `file`, `xxd | head`) to inspect it"
            )));
        }
        if out.len() + line.len() > MAX_BYTES {
            if shown_lines == 0 {
                oversized_line = Some((line_no, line.len()));
            } else {
                cut_by_bytes = true;
            }
            continue;
        }
        out.push_str(line);
        shown_lines += 1;
    }
    let total = line_no;
    if total == 0 {
        return Ok(ReadOutput::Text(format!("[`{shown}` is empty]")));
    }
    if offset > total {
        return Err(ToolError::new(format!(
            "offset {offset} is past the end of `{shown}`, which has {total} lines"
        )));
    }
    if let Some((n, len)) = oversized_line {
        return Ok(ReadOutput::Text(format!(
            "[Line {n} is {} KiB, over the {} KiB limit. Use bash: sed -n '{n}p' {shown} | head -c {MAX_BYTES}]",
            len / 1024,
            MAX_BYTES / 1024
        )));
    }
    let last = offset + shown_lines - 1;
    if last < total {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        let why = if cut_by_bytes {
            format!(" ({} KiB limit)", MAX_BYTES / 1024)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "\n[Showing lines {offset}-{last} of {total}{why}. Use offset={} to continue.]",
            last + 1
        ));
    }
    Ok(ReadOutput::Text(out))
}
