//! The facts a run records: what counts as ran, held, refused and verified.

use super::*;
use crate::server::call_meta::{ApprovalRef, CallMeta};

fn outcome(text: &str, is_error: bool, meta: Option<CallMeta>) -> CallOutcome {
    let mut o = CallOutcome::new(text, is_error);
    o.meta = meta;
    o
}

fn meta(decision: Decision, ran: bool, exit_code: Option<i32>) -> CallMeta {
    CallMeta {
        decision,
        ran,
        exit_code,
        timed_out: false,
        rules: Vec::new(),
        approval: None,
    }
}

fn call<'a>(what: &str, noted: Noted<'a>) -> TurnCall<'a> {
    TurnCall {
        tool: "bash",
        what: what.to_string(),
        noted,
    }
}

#[test]
fn pending_changes_make_a_claimed_fix_not_fixed() {
    let mut f = RunFacts::default();
    let df = outcome(
        "Filesystem ...",
        false,
        Some(meta(Decision::Allow, true, Some(0))),
    );
    f.record_turn(
        1,
        vec![
            call(
                "df -h",
                Noted::Ran {
                    effect: Effect::Check,
                    outcome: &df,
                },
            ),
            call(
                "systemctl restart app",
                Noted::Held(Held::Pending(PendingApproval::new(
                    "a1",
                    "bash",
                    "systemctl restart app",
                    "t",
                ))),
            ),
        ],
        false,
    );
    let h = f.headline("Fixed: restarted the app.\nVerification: healthy.");
    assert_eq!(h.status, "not_fixed");
    assert!(
        h.text
            .starts_with("Not fixed: 1 change awaits approval (a1)"),
        "{}",
        h.text
    );
    assert!(h.text.contains("claims a fix"), "{}", h.text);
    assert_eq!(f.verification.status, VerificationStatus::NoChange);
    let lines = f.lines().join("\n");
    assert!(lines.contains("pi-mcp approvals approve a1"), "{lines}");
    assert!(
        lines.contains("Read-only calls: 1 (bash: df -h)"),
        "{lines}"
    );
}

#[test]
fn a_change_is_verified_only_by_a_check_that_ran_after_it() {
    let mut f = RunFacts::default();
    let sed = outcome("", false, Some(meta(Decision::Allow, true, Some(0))));
    let grep = outcome("1", false, Some(meta(Decision::Allow, true, Some(0))));
    f.record_turn(
        1,
        vec![
            call(
                "sed -i x",
                Noted::Ran {
                    effect: Effect::Change,
                    outcome: &sed,
                },
            ),
            call(
                "grep -c x",
                Noted::Ran {
                    effect: Effect::Check,
                    outcome: &grep,
                },
            ),
        ],
        false,
    );
    assert_eq!(f.verification.status, VerificationStatus::Missing);
    assert_eq!(f.headline("Verification: ok").status, "unverified");
    f.record_turn(
        2,
        vec![call(
            "grep -c x",
            Noted::Ran {
                effect: Effect::Check,
                outcome: &grep,
            },
        )],
        false,
    );
    assert_eq!(f.verification.status, VerificationStatus::Passed);
    let h = f.headline("Verification: ok");
    assert_eq!(h.status, "verified");
    assert!(!h.text.contains("claims"), "{}", h.text);
    let failed = outcome("boom", true, Some(meta(Decision::Allow, true, Some(1))));
    f.record_turn(
        3,
        vec![call(
            "systemctl restart x",
            Noted::Ran {
                effect: Effect::Change,
                outcome: &failed,
            },
        )],
        true,
    );
    let h = f.headline("done");
    assert_eq!(h.status, "not_fixed");
    assert!(h.text.contains("exit 1"), "{}", h.text);
}

#[test]
fn a_refusal_by_the_server_is_not_a_change() {
    let mut f = RunFacts::default();
    let mut m = meta(Decision::Deny, false, None);
    m.rules = vec!["rm-root-or-home".into()];
    let denied = outcome("Command denied by policy", true, Some(m));
    let mut held = meta(Decision::Ask, false, None);
    held.approval = Some(ApprovalRef {
        id: "b2".into(),
        status: "pending".into(),
        expires_at: "t".into(),
    });
    let held = outcome("pending as approval", true, Some(held));
    f.record_turn(
        1,
        vec![
            call(
                "rm -rf /",
                Noted::Ran {
                    effect: Effect::Change,
                    outcome: &denied,
                },
            ),
            call(
                "apt-get install x",
                Noted::Ran {
                    effect: Effect::Change,
                    outcome: &held,
                },
            ),
        ],
        false,
    );
    assert!(f.changes.is_empty());
    assert_eq!(f.refused[0].by, "policy");
    assert_eq!(f.refused[0].rules, ["rm-root-or-home"]);
    assert_eq!(f.pending_approvals[0].id, "b2");
    assert_eq!(f.verification.status, VerificationStatus::NoChange);
}
