//! The SRE rule that a run is not done until it has verified its fix: the final answer must
//! report a post-fix check made through a tool, or say plainly that the problem could not be
//! fixed and why. The loop asks once more when the model tries to finish without either.

use std::sync::LazyLock;

use regex::Regex;

/// What the final answer must contain, told to the model in the system prompt.
pub const INSTRUCTION: &str = "This run enforces the Verify step. Your final answer must contain a line starting \
with `Verification:` that reports the post-fix health check you ran through a tool after your last change, and \
its result. If you could not fix the problem, write a line starting with `Could not fix:` and say why instead.";

/// Sent when the model tries to finish without verification.
pub const NUDGE: &str = "You are about to finish without reporting a verification step. Run a post-fix health \
check through a tool now (the probe, query, log or metric that showed the problem) and report it in a \
`Verification:` line, or, if you could not fix the problem, say so in a `Could not fix:` line with the reason.";

static VERIFICATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?im)^[\s>*#_-]*(verification|verified|verify|health check)\b")
        .expect("the verification pattern is a valid regex")
});
static COULD_NOT_FIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(could not|couldn't|can ?not|can't|unable to|did not|didn't)\s+(fix|resolve|remediate)\b")
        .expect("the verification pattern is a valid regex")
});

/// What the run has done that counts as evidence of a check.
#[derive(Debug, Default, Clone, Copy)]
pub struct Evidence {
    /// A tool call succeeded after the last successful state change made by a dedicated
    /// change tool (`edit` and other non-read-only tools except `bash`, which both acts and
    /// checks).
    pub checked_after_change: bool,
}

impl Evidence {
    /// Notes a call that ran and succeeded.
    pub fn record(&mut self, tool: &str, read_only: bool) {
        self.checked_after_change = read_only || tool == "bash" || tool.ends_with("__bash");
    }
}

/// Whether `answer` reports verification backed by a check, or an explicit could-not-fix.
pub fn is_verified(answer: &str, evidence: Evidence) -> bool {
    COULD_NOT_FIX.is_match(answer)
        || (VERIFICATION.is_match(answer) && evidence.checked_after_change)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_needs_a_statement_and_a_check_after_the_last_change() {
        let mut e = Evidence::default();
        let answer = "Fixed the config.\nVerification: curl /health returns 200.";
        assert!(!is_verified(answer, e), "no tool call at all");
        e.record("bash", false);
        assert!(is_verified(answer, e));
        e.record("edit", false);
        assert!(!is_verified(answer, e), "the edit came after the check");
        e.record("read", true);
        assert!(is_verified(answer, e));
        assert!(
            !is_verified("All good now.", e),
            "no verification statement"
        );
        assert!(is_verified(
            "Could not fix: the disk is read-only.",
            Evidence::default()
        ));
        assert!(is_verified(
            "I was unable to resolve it because...",
            Evidence::default()
        ));
    }
}
