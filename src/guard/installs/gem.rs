//! Ruby installs: `gem install NAME[:VERSION] [-v VERSION]`. A plain version (`7.0.4`,
//! `= 7.0.4`) pins; a requirement (`~> 7.0`, `>= 6`) does not.

use super::{
    Install, Origin, Style, dynamic, elsewhere, flag_value, path_or_url, positionals, requirement,
    subcommand,
};
use crate::guard::osv::Ecosystem;
use crate::guard::versions::GemVersion;
use crate::guard::words::Word;

const GEMS: Ecosystem = Ecosystem::RubyGems;

const GEM_VALUED: &str = "-v --version -i --install-dir -n --bindir --build-root -s --source \
    -P --trust-policy --platform -g --file --document --target-rbconfig -p --http-proxy \
    --config-file -B --bulk-threshold --without --with";

/// `gem install ...`
pub(super) fn gem(args: &[&Word], out: &mut Vec<Install>) {
    let Some((sub, rest)) = subcommand(args, Style::Gnu, &[GEM_VALUED]) else {
        return;
    };
    if sub.dynamic {
        return out.push(dynamic(GEMS, sub));
    }
    if sub.text != "install" {
        return;
    }
    let version_flag = flag_value(rest, Style::Gnu, &[GEM_VALUED], &["-v", "--version"]);
    for w in positionals(rest, Style::Gnu, &[GEM_VALUED]) {
        if w.dynamic {
            out.push(dynamic(GEMS, w));
            continue;
        }
        let spec = w.text.as_str();
        if let Some(origin) = path_or_url(spec, &[".gem"]) {
            out.push(elsewhere(GEMS, spec, origin));
            continue;
        }
        let (name, req) = match spec.split_once(':') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (spec, None),
        };
        let req = match requirement(GEMS, spec, req, &version_flag) {
            Ok(r) => r,
            Err(install) => {
                out.push(*install);
                continue;
            }
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            let why = "not a gem name".to_string();
            out.push(elsewhere(GEMS, spec, Origin::Unresolved(why)));
            continue;
        }
        let version = req
            .as_deref()
            .map(|r| r.trim().trim_start_matches('=').trim())
            .filter(|r| GemVersion::parse(r).is_some())
            .map(str::to_string);
        out.push(super::registry(GEMS, name, version, spec));
    }
}
