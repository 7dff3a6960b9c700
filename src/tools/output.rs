//! Output limits shared by `read` and `bash`: at most [`MAX_LINES`] lines or [`MAX_BYTES`]
//! bytes, never cutting a line in half.

/// Most lines a tool returns.
pub const MAX_LINES: usize = 2000;
/// Most bytes a tool returns.
pub const MAX_BYTES: usize = 50 * 1024;

/// The last lines of `text` that fit the limits. Returns the kept text and how many lines were
/// dropped from the front. A single last line longer than the byte limit keeps its tail.
pub fn tail(text: &str) -> (String, usize) {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut bytes = 0;
    let mut kept = 0;
    for line in lines.iter().rev() {
        if kept == MAX_LINES || bytes + line.len() > MAX_BYTES {
            break;
        }
        bytes += line.len();
        kept += 1;
    }
    if kept == 0 {
        if let Some(last) = lines.last() {
            let mut start = last.len() - MAX_BYTES.min(last.len());
            while !last.is_char_boundary(start) {
                start += 1;
            }
            return (last[start..].to_string(), lines.len() - 1);
        }
        return (String::new(), 0);
    }
    let dropped = lines.len() - kept;
    (lines[dropped..].concat(), dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_whole_lines_within_limits() {
        let text: String = (1..=5000).map(|i| format!("line {i}\n")).collect();
        let (kept, dropped) = tail(&text);
        assert_eq!(kept.lines().count(), MAX_LINES);
        assert_eq!(dropped, 3000);
        assert!(kept.starts_with("line 3001\n"));
        let wide: String = (0..100).map(|_| "x".repeat(1000) + "\n").collect();
        let (kept, _) = tail(&wide);
        assert!(kept.len() <= MAX_BYTES && kept.ends_with('\n') && kept.starts_with('x'));
        assert_eq!(kept.len() % 1001, 0);
    }
}
