//! The bounds of a run: steps, tokens, wall-clock time, and how much of one tool result the
//! model gets to see.

use std::time::Duration;

/// Model turns before the model is asked for a summary instead.
pub const DEFAULT_MAX_STEPS: u32 = 40;
/// `max_tokens` of each model reply.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// Characters of one tool result sent to the model; the rest is cut with a note.
pub const MAX_RESULT_CHARS: usize = 16_000;
/// How many times an empty reply is answered with a nudge before the run ends.
pub const EMPTY_REPLY_NUDGES: u32 = 1;
/// How many times a reply cut at `max_tokens` is asked to continue.
pub const MAX_TOKENS_CONTINUATIONS: u32 = 2;
/// Timeout of one HTTP request to the model.
pub const MODEL_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The limits of one run.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_steps: u32,
    /// Total input + output tokens after which the run stops.
    pub token_budget: Option<u64>,
    /// Wall-clock limit of the whole run.
    pub timeout: Option<Duration>,
    /// Characters of one tool result sent to the model.
    pub max_result_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: DEFAULT_MAX_STEPS,
            token_budget: None,
            timeout: None,
            max_result_chars: MAX_RESULT_CHARS,
        }
    }
}

/// Cuts `text` to `max` characters, keeping its head and tail (errors and summaries are often
/// at the end) with a note in between saying how much was left out; `true` when cut.
pub fn truncate_result(text: &str, max: usize) -> (String, bool) {
    let total = text.chars().count();
    if total <= max {
        return (text.to_string(), false);
    }
    let head_len = max * 2 / 3;
    let tail_len = max - head_len;
    let head: String = text.chars().take(head_len).collect();
    let tail: String = text.chars().skip(total - tail_len).collect();
    let note = format!(
        "\n\n[... {} of {total} characters left out here: the result was longer than the \
         {max}-character budget per result. Ask for less (a narrower grep, head/tail, offset/limit) \
         if you need the middle ...]\n\n",
        total - head_len - tail_len
    );
    (format!("{head}{note}{tail}"), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_results_keep_head_and_tail_with_a_note() {
        let text: String = (0..MAX_RESULT_CHARS * 2)
            .map(|i| if i % 2 == 0 { 'a' } else { 'b' })
            .collect();
        let text = format!("HEAD{text}TAIL");
        let (cut, truncated) = truncate_result(&text, MAX_RESULT_CHARS);
        assert!(truncated);
        assert!(cut.starts_with("HEAD") && cut.ends_with("TAIL"));
        assert!(cut.contains("characters left out"));
        assert!(cut.chars().count() < MAX_RESULT_CHARS + 400);
        assert_eq!(
            truncate_result("short", MAX_RESULT_CHARS),
            ("short".to_string(), false)
        );
    }
}
