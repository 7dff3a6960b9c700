//! Node installs: `npm install/i/add`, `yarn add`, `yarn global add`, `yarn workspace W add`,
//! `pnpm add` and `bun add`, with `name@version`, scoped names and `npm:` aliases.

use super::{Install, Origin, Style, dynamic, elsewhere, exact_semver, path_or_url, positionals};
use crate::guard::osv::Ecosystem;
use crate::guard::words::Word;

const NPM: Ecosystem = Ecosystem::Npm;

const NPM_VALUED: &str = "--registry --prefix -C --tag --workspace -w --cache --userconfig \
    --globalconfig --loglevel --omit --include --install-strategy --before --save-prefix --otp \
    --scope --cpu --os --libc";
const YARN_VALUED: &str = "--registry --cwd --modules-folder --cache-folder --network-timeout \
    --mutex --global-folder --link-folder --use-yarnrc --prefix";
const PNPM_VALUED: &str = "--filter -F --dir -C --workspace-dir --registry --store-dir \
    --reporter --loglevel --virtual-store-dir --modules-dir --config --allow-build";
const BUN_VALUED: &str = "--cwd --registry --backend --cache-dir -c --config";
/// npm's spellings of `install` (it accepts its own typos).
const NPM_INSTALL: &[&str] = &[
    "install", "i", "in", "ins", "inst", "insta", "instal", "isnt", "isnta", "isntal", "isntall",
    "add",
];
const ARCHIVES: &[&str] = &[".tgz", ".tar.gz", ".tar"];

/// `npm|yarn|pnpm|bun ... add|install PKG...`
pub(super) fn node(program: &str, args: &[&Word], out: &mut Vec<Install>) {
    let valued = match program {
        "npm" => NPM_VALUED,
        "yarn" => YARN_VALUED,
        "pnpm" => PNPM_VALUED,
        _ => BUN_VALUED,
    };
    let words = positionals(args, Style::Gnu, &[valued]);
    let Some(first) = words.first() else {
        return;
    };
    if first.dynamic {
        return out.push(dynamic(NPM, first));
    }
    let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    let skip = match (program, texts.as_slice()) {
        ("npm", [sub, ..]) if NPM_INSTALL.contains(sub) => 1,
        ("yarn", ["add", ..]) => 1,
        ("yarn", ["global", "add", ..]) => 2,
        ("yarn", ["workspace", _, "add", ..]) => 3,
        ("pnpm", ["add" | "install" | "i", ..]) => 1,
        ("bun", ["add" | "a" | "install" | "i", ..]) => 1,
        _ => return,
    };
    for w in words.iter().skip(skip) {
        out.push(npm_spec(w));
    }
}

/// One npm package spec: `name`, `name@1.2.3`, `@scope/name@^1`, `alias@npm:name@1.0.0`, a
/// path, a tarball, a URL or a `user/repo` GitHub shorthand.
fn npm_spec(w: &Word) -> Install {
    if w.dynamic {
        return dynamic(NPM, w);
    }
    let spec = w.text.as_str();
    if let Some(origin) = path_or_url(spec, ARCHIVES) {
        return elsewhere(NPM, spec, origin);
    }
    let hosted = ["github:", "gitlab:", "bitbucket:", "gist:"];
    if hosted.iter().any(|p| spec.starts_with(p)) {
        return elsewhere(NPM, spec, Origin::Remote);
    }
    let from = usize::from(spec.starts_with('@'));
    let (name, range) = match spec[from..].find('@') {
        Some(i) => (&spec[..from + i], Some(&spec[from + i + 1..])),
        None => (spec, None),
    };
    if let Some(real) = range.and_then(|r| r.strip_prefix("npm:")) {
        let mut aliased = npm_spec(&Word::literal(real));
        aliased.spec = spec.to_string();
        return aliased;
    }
    if from == 0 && name.contains('/') {
        return elsewhere(NPM, spec, Origin::Remote); // GitHub shorthand `user/repo`
    }
    let valid = !name.is_empty()
        && name.len() > from
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~@/".contains(c));
    if !valid {
        let why = "not a package name".to_string();
        return elsewhere(NPM, spec, Origin::Unresolved(why));
    }
    let version = range
        .map(|r| r.trim().trim_start_matches(['=', 'v']).trim())
        .filter(|r| exact_semver(r))
        .map(str::to_string);
    super::registry(NPM, name, version, spec)
}
