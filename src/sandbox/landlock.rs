//! Landlock for a `bash` child: read and execute everywhere, write only beneath the writable
//! paths and on a few devices. Landlock also keeps the child from ptrace-ing, or reading the
//! `/proc` memory and environment of, any process outside its own domain.

use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, LandlockStatus, PathBeneath, PathFd, RestrictionStatus, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetError, RulesetStatus, make_bitflags,
    path_beneath_rules,
};

/// The Landlock ABI whose rights are requested; an older kernel enforces the subset it knows.
pub const ABI_WANTED: ABI = ABI::V5;
/// Devices every command may read, write and truncate. `/dev/stdout`, `/dev/stderr` and
/// `/dev/fd` lead to pipes, which Landlock never restricts; they are listed for the case where
/// they lead to a file. Entries that do not exist or cannot carry a rule are skipped.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/stdout",
    "/dev/stderr",
    "/dev/fd",
];

/// Restricts the calling thread: read and execute everywhere, write only beneath `writable`
/// and on [`DEVICES`].
pub fn restrict_fs(writable: &[PathBuf]) -> Result<RestrictionStatus, RulesetError> {
    let device = make_bitflags!(AccessFs::{ReadFile | WriteFile | Truncate | IoctlDev});
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(ABI_WANTED))?
        .create()?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(ABI_WANTED)))?
        .add_rules(path_beneath_rules(writable, AccessFs::from_all(ABI_WANTED)))?;
    for path in DEVICES {
        // Missing, or a pipe Landlock cannot label (it needs no rule then).
        if let Ok(fd) = PathFd::new(path) {
            let _ = (&mut ruleset).add_rule(PathBeneath::new(fd, device));
        }
    }
    ruleset.restrict_self()
}

/// What the running kernel offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Landlock is enforced with the rights of ABI `enforced` (the kernel has `kernel`).
    Landlock { enforced: ABI, kernel: ABI },
    /// No Landlock, and why.
    Missing(String),
}

/// Probes Landlock once. Landlock and `no_new_privs` restrict only the calling thread, so a
/// throwaway thread restricts itself with an empty ruleset and reports what the kernel did.
pub fn probe() -> Support {
    let attempt = std::thread::spawn(|| {
        Ruleset::default()
            .handle_access(AccessFs::from_all(ABI_WANTED))?
            .create()?
            .restrict_self()
    })
    .join();
    match attempt {
        Ok(Ok(status)) => match (status.landlock, status.ruleset) {
            (LandlockStatus::NotImplemented, _) => {
                Support::Missing("not built into the kernel".into())
            }
            (LandlockStatus::NotEnabled, _) => {
                Support::Missing("built in but not enabled at boot (see `lsm=`)".into())
            }
            (LandlockStatus::Available { .. }, RulesetStatus::NotEnforced) => {
                Support::Missing("the kernel did not enforce a ruleset".into())
            }
            (LandlockStatus::Available { effective_abi, .. }, _) => Support::Landlock {
                enforced: effective_abi.min(ABI_WANTED),
                kernel: effective_abi,
            },
        },
        Ok(Err(e)) => Support::Missing(e.to_string()),
        Err(_) => Support::Missing("the probe thread panicked".into()),
    }
}
