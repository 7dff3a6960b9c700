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
/// An explicit could-not-fix statement: at the start of a line (`Could not fix:`, `I was unable
/// to resolve ...`), not a phrase anywhere ("the first restart did not fix it ... all good").
static COULD_NOT_FIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?im)^[\s>*#_-]*(?:i\s+)?(?:was\s+)?(?:could not|couldn't|can ?not|can't|unable to|not able to)\s+(?:fix|resolve|remediate)\b",
    )
    .expect("the could-not-fix pattern is a valid regex")
});

/// What a tool call does to the system, as far as verification is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Only looks (a read-only tool, or `bash` whose command is observation only): a check.
    Check,
    /// May change state (`edit`, any other `bash`, tools of external servers): evidence
    /// gathered before it no longer shows the system as it is.
    Change,
    /// Neither changes the system nor checks it (`notify`, `ghost`).
    Neutral,
}

/// What the run has done that counts as evidence of a check.
#[derive(Debug, Default, Clone, Copy)]
pub struct Evidence {
    /// A check succeeded after the last call that may have changed state.
    pub checked_after_change: bool,
}

impl Evidence {
    /// Notes one call that ran: a change (even a failed one: it may have done half its work)
    /// voids earlier checks; a successful check counts.
    pub fn record(&mut self, effect: Effect, succeeded: bool) {
        match effect {
            Effect::Change => self.checked_after_change = false,
            Effect::Check if succeeded => self.checked_after_change = true,
            Effect::Check | Effect::Neutral => {}
        }
    }

    /// Notes one turn's calls that ran, in the order asked. When they ran in parallel
    /// (`ordered` false), a check in the same turn as a change may have finished before it,
    /// so it does not count.
    pub fn record_turn(&mut self, calls: &[(Effect, bool)], ordered: bool) {
        if !ordered && calls.iter().any(|(e, _)| *e == Effect::Change) {
            self.checked_after_change = false;
            return;
        }
        for (effect, succeeded) in calls {
            self.record(*effect, *succeeded);
        }
    }
}

/// Words of an answer that announces the problem is gone.
static FIX_CLAIM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(fixed|resolved|restored|mitigated|remediated|healthy again|back to normal)\b",
    )
    .expect("the fix-claim pattern is a valid regex")
});

/// Whether `answer` claims a fix: a verification statement or fix words, and no explicit
/// could-not-fix line.
pub fn claims_fix(answer: &str) -> bool {
    !COULD_NOT_FIX.is_match(answer) && (VERIFICATION.is_match(answer) || FIX_CLAIM.is_match(answer))
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
        e.record(Effect::Check, true);
        assert!(is_verified(answer, e));
        e.record(Effect::Change, true);
        assert!(!is_verified(answer, e), "the change came after the check");
        e.record(Effect::Check, false);
        assert!(!is_verified(answer, e), "a failed check is no evidence");
        e.record(Effect::Check, true);
        assert!(is_verified(answer, e));
        e.record(Effect::Neutral, true);
        assert!(
            is_verified(answer, e),
            "a notification neither voids nor checks"
        );
        e.record(Effect::Change, false);
        assert!(
            !is_verified(answer, e),
            "a failed change may have done half its work"
        );
        assert!(
            !is_verified("All good now.", e),
            "no verification statement"
        );
    }

    #[test]
    fn a_restart_is_not_its_own_verification() {
        let mut e = Evidence::default();
        // `bash systemctl restart x` is a change, not a check.
        e.record(Effect::Change, true);
        assert!(!is_verified("Verification: restarted the service.", e));
        e.record(Effect::Neutral, true);
        assert!(!is_verified("Verification: restarted the service.", e));
    }

    #[test]
    fn parallel_checks_in_the_turn_of_a_change_do_not_count() {
        let mut e = Evidence::default();
        let turn = [(Effect::Check, true), (Effect::Change, true)];
        e.record_turn(&turn, false);
        assert!(!e.checked_after_change);
        let turn = [(Effect::Change, true), (Effect::Check, true)];
        e.record_turn(&turn, true);
        assert!(e.checked_after_change, "sequential: the check ran after");
        e.record_turn(&turn, false);
        assert!(!e.checked_after_change, "parallel: it may not have");
        e.record_turn(&[(Effect::Check, true), (Effect::Neutral, true)], false);
        assert!(e.checked_after_change);
    }

    #[test]
    fn could_not_fix_must_be_stated_at_the_start_of_a_line() {
        let none = Evidence::default();
        for ok in [
            "Could not fix: the disk is read-only.",
            "Found the cause.\n**Could not fix:** no permission.",
            "I was unable to resolve it because the database is down.",
            "- Couldn't fix it: approval pending.",
            "I could not remediate the outage from here.",
        ] {
            assert!(is_verified(ok, none), "{ok}");
        }
        for not in [
            "The first restart did not fix it, the second did. All good.",
            "Restarted twice; it could not fix itself at first but now all good.",
            "All good, though the cron job could not resolve DNS earlier.",
        ] {
            assert!(!is_verified(not, none), "{not}");
        }
    }
}
