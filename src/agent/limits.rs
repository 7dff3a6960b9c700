//! The bounds of a run: steps, tokens (estimated from characters when the server reports no
//! usage), wall-clock time, and how much of one tool result the model gets to see.

use std::time::Duration;

use super::provider::{Message, ModelReply, ToolCall, ToolSpec, Usage};

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

/// Characters per token assumed when a server reports no token usage (a rule of thumb for
/// English text and JSON), so that `--token-budget` still bounds the run.
pub const CHARS_PER_TOKEN: usize = 4;

/// Token usage of one request estimated from characters, for servers that report none: the
/// system prompt, the tool list and the conversation in, the reply's text and calls out.
pub fn estimate_usage(
    system: &str,
    specs: &[ToolSpec],
    messages: &[Message],
    reply: &ModelReply,
) -> Usage {
    let tools: usize = specs
        .iter()
        .map(|t| t.name.len() + t.description.len() + t.input_schema.to_string().len())
        .sum();
    let calls = |calls: &[ToolCall]| -> usize {
        calls
            .iter()
            .map(|c| c.name.len() + c.raw_arguments.to_string().len())
            .sum()
    };
    let conversation: usize = messages
        .iter()
        .map(|m| match m {
            Message::User { text } => text.len(),
            Message::Assistant { text, tool_calls } => text.len() + calls(tool_calls),
            Message::ToolResults { results, note } => {
                results.iter().map(|r| r.text.len()).sum::<usize>()
                    + note.as_deref().map_or(0, str::len)
            }
        })
        .sum();
    let tokens = |chars: usize| chars.div_ceil(CHARS_PER_TOKEN) as u64;
    Usage {
        input_tokens: tokens(system.len() + tools + conversation),
        output_tokens: tokens(reply.text.len() + calls(&reply.tool_calls)),
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
    fn usage_is_estimated_at_four_characters_a_token() {
        let reply = ModelReply {
            text: "12345678".into(),
            tool_calls: Vec::new(),
            stop: super::super::provider::StopKind::EndTurn,
            usage: Usage::default(),
            wire_time: Duration::ZERO,
        };
        let messages = [Message::User {
            text: "x".repeat(30),
        }];
        let u = estimate_usage(&"s".repeat(10), &[], &messages, &reply);
        assert_eq!(u.input_tokens, 10, "40 characters in");
        assert_eq!(u.output_tokens, 2, "8 characters out");
    }

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
