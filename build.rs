//! Build script, for one link option (issue 14): the `pi-mcp` binary's relative relocations
//! are packed (`-z pack-relative-relocs`, DT_RELR). Unpacked, the 97,000 relocations of this
//! position-independent binary are a 2.3 MB table the dynamic loader reads at every start, so
//! its pages were resident in every server (about 4 MiB of idle RSS with the data they patch).
//! DT_RELR needs glibc 2.36 at run time, so the option is given only for a native Linux/glibc
//! build on a glibc of at least 2.36 (a binary linked against glibc 2.34 or later already
//! needs 2.34). `PI_MCP_NO_RELR=1` leaves it out (for a binary meant for an older glibc).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PI_MCP_NO_RELR");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let native = var("TARGET") == var("HOST");
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || !native
        || std::env::var_os("PI_MCP_NO_RELR").is_some()
    {
        return;
    }
    if glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the build host's glibc (`getconf GNU_LIBC_VERSION`: `glibc 2.36`) is at least
/// `major.minor`; false when it cannot be told.
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.trim().strip_prefix("glibc ") else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}
