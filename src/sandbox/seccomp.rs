//! The seccomp filter of `network: "deny"` (and of `allowlist` where namespaces are missing):
//! `socket(2)` fails with `EACCES` for every family but `AF_UNIX` and `AF_NETLINK`, and
//! `io_uring_setup(2)` always (io_uring can open sockets without the `socket` system call).

use std::collections::BTreeMap;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Socket families a command may still open when the network is denied.
const LOCAL_FAMILIES: [libc::c_int; 2] = [libc::AF_UNIX, libc::AF_NETLINK];
/// x86-64 kernels may also accept x32 system calls: the same numbers with this bit set.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: i64 = 0x4000_0000;

/// A filter that fails `socket(2)` with `EACCES` unless the family is in [`LOCAL_FAMILIES`],
/// and `io_uring_setup(2)` always.
pub fn network_filter() -> Result<BpfProgram, seccompiler::Error> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)?;
    let mut remote = Vec::new();
    for family in LOCAL_FAMILIES {
        // The family is an `int`: compare the low 32 bits only.
        remote.push(SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Ne,
            u64::from(family.unsigned_abs()),
        )?);
    }
    let socket = vec![SeccompRule::new(remote)?];
    let mut rules = BTreeMap::from([
        (libc::SYS_socket, socket.clone()),
        (libc::SYS_io_uring_setup, Vec::new()),
    ]);
    #[cfg(target_arch = "x86_64")]
    {
        rules.insert(libc::SYS_socket | X32_SYSCALL_BIT, socket);
        rules.insert(libc::SYS_io_uring_setup | X32_SYSCALL_BIT, Vec::new());
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EACCES.unsigned_abs()),
        arch,
    )?;
    Ok(filter.try_into()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn network_filter_compiles() {
        assert!(!super::network_filter().unwrap().is_empty());
    }
}
