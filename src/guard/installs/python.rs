//! Python installs: `pip install`, `python -m pip install`, `uv pip install`, `uv add`,
//! `uv tool install` and `pipx install`, with PEP 508 requirement specs and requirements files.

use std::path::Path;

use super::{
    Arg, COMMAND_LINE, COMPUTED, Install, MAX_REQUIREMENTS_BYTES, MAX_REQUIREMENTS_DEPTH, Origin,
    Style, Valued, dynamic, parse_args, path_or_url, subcommand, unresolved,
};
use crate::guard::osv::Ecosystem;
use crate::guard::words::Word;

const PYPI: Ecosystem = Ecosystem::PyPI;

/// pip's (and uv's pip interface's) flags that take a value.
const PIP_VALUED: &str = "-r --requirement -c --constraint -e --editable -i --index-url \
    --extra-index-url -f --find-links -t --target --prefix --root --src --upgrade-strategy \
    --platform --python-version --implementation --abi --no-binary --only-binary --progress-bar \
    --log --log-file --proxy --retries --timeout --exists-action --trusted-host --cert \
    --client-cert --cache-dir -C --config-settings --global-option --install-option --report \
    --python --keyring-provider --root-user-action --use-feature --use-deprecated --group \
    --resume-retries --index --default-index --overrides --extra --resolution --prerelease \
    --exclude-newer --link-mode --config-file --directory --project --color --python-platform \
    -p -P --upgrade-package --reinstall-package --no-binary-package --config-setting \
    --torch-backend";
/// Flags of `uv add` beyond pip's.
const UV_ADD_VALUED: &str = "--requirements --optional --rev --tag --branch --package --script \
    --bounds -m --marker";
/// Flags of `uv tool install` beyond pip's.
const UV_TOOL_VALUED: &str = "--with --with-requirements --from --with-editable";
/// Flags of `pipx install`.
const PIPX_VALUED: &str = "--python --suffix --pip-args --index-url --preinstall";
/// Archives pip installs from a path.
const ARCHIVES: &[&str] = &[".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz"];

/// `pip`, `pip3`, `pip3.12`.
pub(super) fn is_pip(p: &str) -> bool {
    p.strip_prefix("pip")
        .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// `python`, `python3`, `python3.12`, `py`.
pub(super) fn is_python(p: &str) -> bool {
    p == "py"
        || p.strip_prefix("python")
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// `pip [global flags] install ...`
pub(super) fn pip_command(args: &[&Word], cwd: &Path, out: &mut Vec<Install>) {
    match subcommand(args, Style::Gnu, &[PIP_VALUED]) {
        Some((sub, rest)) if sub.text == "install" => pip_args(rest, cwd, &[PIP_VALUED], out),
        Some((sub, _)) if sub.dynamic => out.push(dynamic(PYPI, sub)),
        _ => {}
    }
}

/// `python [-opts] -m pip install ...`
pub(super) fn python_m_pip(args: &[&Word], cwd: &Path, out: &mut Vec<Install>) {
    let mut skip = false;
    for (i, w) in args.iter().enumerate() {
        let t = w.text.as_str();
        if std::mem::take(&mut skip) {
            continue;
        }
        if t == "-X" || t == "-W" {
            skip = true; // these take a value
            continue;
        }
        if t == "-c" || t == "--" || !t.starts_with('-') {
            return; // a script or code runs, not a module
        }
        if let Some(module) = t.strip_prefix("-m") {
            let (module, rest) = if module.is_empty() {
                (args.get(i + 1).map(|w| w.text.as_str()), i + 2)
            } else {
                (Some(module), i + 1)
            };
            if module.is_some_and(is_pip) {
                pip_command(args.get(rest..).unwrap_or_default(), cwd, out);
            }
            return;
        }
    }
}

/// `uv pip install ...`, `uv add ...`, `uv tool install ...`.
pub(super) fn uv(args: &[&Word], cwd: &Path, out: &mut Vec<Install>) {
    let Some((sub, rest)) = subcommand(args, Style::Gnu, &[PIP_VALUED]) else {
        return;
    };
    match sub.text.as_str() {
        "pip" => pip_command(rest, cwd, out),
        "add" => pip_args(rest, cwd, &[PIP_VALUED, UV_ADD_VALUED], out),
        "tool" => {
            let Some((sub, rest)) = subcommand(rest, Style::Gnu, &[PIP_VALUED]) else {
                return;
            };
            if sub.text != "install" {
                return;
            }
            let valued: Valued = &[PIP_VALUED, UV_TOOL_VALUED];
            match super::flag_value(rest, Style::Gnu, valued, &["--from"]) {
                // `--from SPEC` names the package; the positional is then the command
                Some(from) => out.push(pip_spec(&from, COMMAND_LINE)),
                None => pip_args(rest, cwd, valued, out),
            }
        }
        _ if sub.dynamic => out.push(dynamic(PYPI, sub)),
        _ => {}
    }
}

/// `pipx install SPEC...`
pub(super) fn pipx(args: &[&Word], cwd: &Path, out: &mut Vec<Install>) {
    if let Some((sub, rest)) = subcommand(args, Style::Gnu, &[PIPX_VALUED])
        && sub.text == "install"
    {
        pip_args(rest, cwd, &[PIPX_VALUED], out);
    }
}

/// The arguments after `install`: requirement specs, `-r` files and `-e` paths.
fn pip_args(args: &[&Word], cwd: &Path, valued: Valued, out: &mut Vec<Install>) {
    for a in parse_args(args, Style::Gnu, valued) {
        match a {
            Arg::Pos(w) => out.push(pip_spec(w, COMMAND_LINE)),
            Arg::Flag(f, Some(v)) if f == "-e" || f == "--editable" => {
                out.push(pip_spec(&v, COMMAND_LINE))
            }
            Arg::Flag(f, Some(v)) if ["-r", "--requirement", "--requirements"].contains(&&*f) => {
                if v.dynamic {
                    let spec = format!("-r {}", v.text);
                    out.push(unresolved(PYPI, &spec, COMMAND_LINE, COMPUTED));
                } else {
                    requirements_file(&cwd.join(&v.text), &v.text, 0, out);
                }
            }
            _ => {}
        }
    }
}

/// Reads a requirements file and the files it includes with `-r`.
fn requirements_file(path: &Path, shown: &str, depth: usize, out: &mut Vec<Install>) {
    let spec = format!("-r {shown}");
    let mut fail = |why: String| out.push(unresolved(PYPI, &spec, COMMAND_LINE, &why));
    if depth > MAX_REQUIREMENTS_DEPTH {
        return fail(format!(
            "requirements files nest more than {MAX_REQUIREMENTS_DEPTH} deep"
        ));
    }
    let text = match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_REQUIREMENTS_BYTES => {
            return fail(format!(
                "{shown} is larger than {MAX_REQUIREMENTS_BYTES} bytes"
            ));
        }
        Ok(_) => std::fs::read_to_string(path),
        Err(e) => Err(e),
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => return fail(format!("cannot read {shown}: {e}")),
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut joined = String::new();
    let mut start = 0;
    for (n, raw) in text.lines().enumerate() {
        if joined.is_empty() {
            start = n + 1;
        }
        match raw.strip_suffix('\\') {
            Some(head) => joined.push_str(head),
            None => {
                joined.push_str(raw);
                let line = std::mem::take(&mut joined);
                requirement_line(&line, base, &format!("{shown}:{start}"), depth, out);
            }
        }
    }
    if !joined.is_empty() {
        requirement_line(&joined, base, &format!("{shown}:{start}"), depth, out);
    }
}

/// One logical line of a requirements file.
fn requirement_line(line: &str, base: &Path, source: &str, depth: usize, out: &mut Vec<Install>) {
    // a comment starts at `#` at the start of the line or after whitespace
    let end = line
        .match_indices('#')
        .map(|(i, _)| i)
        .find(|&i| i == 0 || line[..i].ends_with(char::is_whitespace))
        .unwrap_or(line.len());
    let line = line[..end].trim();
    if line.is_empty() {
        return;
    }
    if line.contains("${") {
        let why = "pip would expand an environment variable in it";
        return out.push(unresolved(PYPI, line, source, why));
    }
    if line.starts_with('-') {
        let (opt, value) = match line.split_once(|c: char| c == '=' || c.is_whitespace()) {
            Some((o, v)) => (o, v.trim()),
            None if !line.starts_with("--") => line.split_at(2.min(line.len())),
            None => (line, ""),
        };
        let value = value.trim();
        match opt {
            "-r" | "--requirement" if !value.is_empty() => {
                requirements_file(&base.join(value), value, depth + 1, out)
            }
            "-e" | "--editable" if !value.is_empty() => {
                out.push(pip_spec(&Word::literal(value), source))
            }
            _ => {} // index options, constraints, global flags
        }
        return;
    }
    // per-requirement options (`--hash=...`) follow the spec after whitespace
    let spec = match line.find(" --").or_else(|| line.find("\t--")) {
        Some(i) => line[..i].trim(),
        None => line,
    };
    out.push(pip_spec(&Word::literal(spec), source));
}

/// One PEP 508 requirement (`name[extra]==1.0; marker`), a path, or a URL.
pub(super) fn pip_spec(w: &Word, source: &str) -> Install {
    let spec = w.text.trim();
    let make = |origin: Origin, name: &str, version: Option<String>| Install {
        ecosystem: PYPI,
        name: name.to_string(),
        version,
        spec: spec.to_string(),
        source: source.to_string(),
        origin,
    };
    let invalid = || {
        make(
            Origin::Unresolved("not a valid requirement".into()),
            spec,
            None,
        )
    };
    if w.dynamic {
        return make(Origin::Unresolved(COMPUTED.into()), spec, None);
    }
    let before_marker = spec.split(';').next().unwrap_or(spec).trim();
    let name_len = before_marker
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(before_marker.len());
    let name = &before_marker[..name_len];
    let mut rest = before_marker[name_len..].trim_start();
    if rest.starts_with('[') {
        match rest.find(']') {
            Some(i) => rest = rest[i + 1..].trim_start(),
            None => return invalid(),
        }
    }
    // a direct reference: `name @ https://...` or `name @ file:///...`
    if let Some(url) = rest
        .strip_prefix('@')
        .map(str::trim)
        .filter(|_| !name.is_empty())
    {
        let origin = if url.to_ascii_lowercase().starts_with("file:") {
            Origin::Local
        } else {
            Origin::Remote
        };
        return make(origin, name, None);
    }
    if let Some(origin) = path_or_url(spec, ARCHIVES) {
        return make(origin, spec, None);
    }
    if spec.contains('/') || spec.contains('\\') {
        return make(Origin::Local, spec, None); // pip reads a spec with a separator as a path
    }
    if name.is_empty() || !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return invalid();
    }
    let rest = rest.trim_start_matches('(').trim_end_matches(')').trim();
    let clauses: Vec<&str> = rest
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let version = match clauses.as_slice() {
        [one] => one
            .strip_prefix("===")
            .or_else(|| one.strip_prefix("==").filter(|v| !v.contains('*')))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty()),
        _ => None,
    };
    make(Origin::Registry, name, version)
}
