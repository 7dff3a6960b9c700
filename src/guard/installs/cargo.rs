//! Rust installs: `cargo install NAME[@VERSION] [--version V]` and `cargo add NAME[@REQ]`.
//! `cargo install` takes a plain `X.Y.Z` as exactly that version; `cargo add name@X.Y.Z` adds
//! the requirement `^X.Y.Z` and keeps a compatible version already locked, so its lowest
//! version, the one named, is the one checked.

use super::{
    Install, Origin, Style, dynamic, elsewhere, exact_semver, flag_value, positionals, requirement,
    subcommand,
};
use crate::guard::osv::Ecosystem;
use crate::guard::words::Word;

const CRATES: Ecosystem = Ecosystem::CratesIo;

/// Flags before the subcommand that take a value.
const GLOBAL_VALUED: &str = "--color --config -Z -C";
const INSTALL_VALUED: &str = "--version --vers --git --branch --tag --rev --path --root --index \
    --registry --features -F --jobs -j --target --target-dir --profile --bin --example --config \
    -Z --color --message-format";
const ADD_VALUED: &str = "--rename --registry --git --branch --tag --rev --path --base \
    --features -F --package -p --manifest-path --target --config -Z --color --lockfile-path";

/// `cargo [+toolchain] install|add ...`
pub(super) fn cargo(args: &[&Word], out: &mut Vec<Install>) {
    let args = match args.first() {
        Some(w) if w.text.starts_with('+') => &args[1..],
        _ => args,
    };
    let Some((sub, rest)) = subcommand(args, Style::Gnu, &[GLOBAL_VALUED]) else {
        return;
    };
    if sub.dynamic {
        return out.push(dynamic(CRATES, sub));
    }
    let valued = match sub.text.as_str() {
        "install" => INSTALL_VALUED,
        "add" => ADD_VALUED,
        _ => return,
    };
    let flag = |names: &[&str]| flag_value(rest, Style::Gnu, &[valued], names);
    if let Some(git) = flag(&["--git"]) {
        return out.push(elsewhere(CRATES, &git.text, Origin::Remote));
    }
    if let Some(path) = flag(&["--path"]) {
        return out.push(elsewhere(CRATES, &path.text, Origin::Local));
    }
    let version_flag = match sub.text.as_str() {
        "install" => flag(&["--version", "--vers"]),
        _ => None,
    };
    for w in positionals(rest, Style::Gnu, &[valued]) {
        if w.dynamic {
            out.push(dynamic(CRATES, w));
            continue;
        }
        let (name, req) = match w.text.split_once('@') {
            Some((n, r)) => (n, Some(r.to_string())),
            None => (w.text.as_str(), None),
        };
        let req = match requirement(CRATES, &w.text, req, &version_flag) {
            Ok(r) => r,
            Err(install) => {
                out.push(*install);
                continue;
            }
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            let why = "not a crate name".to_string();
            out.push(elsewhere(CRATES, &w.text, Origin::Unresolved(why)));
            continue;
        }
        let version = req
            .as_deref()
            .map(|r| r.trim().trim_start_matches('=').trim())
            .filter(|r| exact_semver(r))
            .map(str::to_string);
        out.push(super::registry(CRATES, name, version, &w.text));
    }
}
