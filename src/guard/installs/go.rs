//! Go installs: `go get MODULE[@VERSION]` and `go install PACKAGE@VERSION`. Only a full
//! semantic version (`v1.2.3`, a pseudo-version) pins; `@latest`, `@upgrade`, branches, commit
//! hashes and prefixes (`@v1`) resolve to something unknown here. Standard-library packages,
//! local paths and `@none` (a removal) are not registry installs.

use super::{Install, Origin, Style, dynamic, elsewhere, exact_semver, positionals, subcommand};
use crate::guard::osv::Ecosystem;
use crate::guard::words::Word;

const GO: Ecosystem = Ecosystem::Go;

/// Build flags that take a value (the go command spells them with one dash).
const GO_VALUED: &str = "-C -o -p -tags -ldflags -gcflags -asmflags -gccgoflags -mod -modfile \
    -overlay -pkgdir -toolexec -compiler -installsuffix -pgo -buildmode -covermode -coverpkg \
    -exec";

/// `go get|install ...`
pub(super) fn go(args: &[&Word], out: &mut Vec<Install>) {
    let Some((sub, rest)) = subcommand(args, Style::Go, &[GO_VALUED]) else {
        return;
    };
    if sub.dynamic {
        return out.push(dynamic(GO, sub));
    }
    if sub.text != "get" && sub.text != "install" {
        return;
    }
    for w in positionals(rest, Style::Go, &[GO_VALUED]) {
        if w.dynamic {
            out.push(dynamic(GO, w));
            continue;
        }
        let spec = w.text.as_str();
        let (path, query) = match spec.split_once('@') {
            Some((p, q)) => (p, Some(q)),
            None => (spec, None),
        };
        if query == Some("none") {
            continue; // removes a requirement
        }
        let path = path.trim_end_matches("/...");
        let first = path.split('/').next().unwrap_or_default();
        if path.is_empty() || path.starts_with(['.', '/']) || !first.contains('.') {
            // a local package, or the standard library (`fmt`, `cmd/vet`, `std`, `all`)
            out.push(elsewhere(GO, spec, Origin::Local));
            continue;
        }
        if path.contains("...") || path.contains(char::is_whitespace) {
            let why = "a package pattern".to_string();
            out.push(elsewhere(GO, spec, Origin::Unresolved(why)));
            continue;
        }
        let version = query
            .filter(|q| q.strip_prefix('v').is_some_and(exact_semver))
            .map(str::to_string);
        out.push(super::registry(GO, path, version, spec));
    }
}
