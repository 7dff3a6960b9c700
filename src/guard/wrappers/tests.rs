//! Tests of looking through wrappers.

use super::*;

fn words(s: &str) -> Vec<Word> {
    s.split_whitespace().map(Word::literal).collect()
}

fn inner(s: &str) -> Vec<String> {
    match unwrap(&words(s)).into_iter().next() {
        Some(Unwrapped::Command { argv, .. }) => argv.into_iter().map(|w| w.text).collect(),
        Some(Unwrapped::Script { script, .. }) => vec![format!("script:{}", script.text)],
        None => Vec::new(),
    }
}

#[test]
fn looks_through_wrappers() {
    assert_eq!(inner("sudo -u root rm -rf /"), ["rm", "-rf", "/"]);
    assert_eq!(inner("env -i FOO=1 rm x"), ["rm", "x"]);
    assert_eq!(inner("timeout -s KILL 10 rm x"), ["rm", "x"]);
    assert_eq!(inner("nice -n 5 rm x"), ["rm", "x"]);
    assert_eq!(inner("nice -5 rm x"), ["rm", "x"]);
    assert_eq!(inner("xargs -n 1 rm"), ["rm"]);
    assert_eq!(inner("find . -name x -exec rm -f {} ;"), ["rm", "-f", "{}"]);
    assert_eq!(inner("bash -lc ls"), ["script:ls"]);
    assert_eq!(inner("ssh -p 22 host rm -rf /"), ["script:rm -rf /"]);
    assert_eq!(inner("kubectl exec pod -- rm -rf /"), ["rm", "-rf", "/"]);
    assert!(inner("ls -la").is_empty());
    assert!(inner("bash script.sh").is_empty());
}

#[test]
fn looks_through_launchers() {
    assert_eq!(inner("taskset -c 0 rm x"), ["rm", "x"]);
    assert_eq!(inner("chrt -f 10 rm x"), ["rm", "x"]);
    assert_eq!(inner("systemd-run --uid 0 -p Nice=5 rm x"), ["rm", "x"]);
    assert_eq!(inner("unshare -r -w /tmp rm x"), ["rm", "x"]);
    assert_eq!(
        inner("docker --context prod exec -u pg db dropdb x"),
        ["dropdb", "x"]
    );
    assert_eq!(
        inner("docker compose -f c.yml exec db dropdb x"),
        ["dropdb", "x"]
    );
    assert_eq!(inner("uv run --with rich python x.py"), ["python", "x.py"]);
    assert_eq!(inner("npm exec -- rm x"), ["rm", "x"]);
    assert_eq!(inner("npx -y rimraf x"), ["rimraf", "x"]);
    assert_eq!(inner("npx -c ls"), ["script:ls"]);
    assert_eq!(inner("toybox rm x"), ["rm", "x"]);
    assert!(inner("docker ps").is_empty());
    assert!(inner("uv pip list").is_empty());
}

#[test]
fn replace_strings_and_template_less_parallel_are_seen() {
    let marked = |s: &str| match unwrap(&words(s)).into_iter().next() {
        Some(Unwrapped::Command { argv, .. }) => argv.iter().map(|w| w.dynamic).collect(),
        _ => Vec::new(),
    };
    assert_eq!(marked("xargs -IX sh -c X"), [false, false, true]);
    assert_eq!(marked("xargs -I {} gzip {}"), [false, true]);
    assert_eq!(marked("xargs -n1 echo"), [false]);
    assert_eq!(inner("parallel ::: ls"), ["script:ls"]);
    assert_eq!(inner("parallel"), ["script:<commands read from input>"]);
}

#[test]
fn wrappers_with_an_option_spec_count_as_looked_through() {
    for name in [
        "sudo",
        "env",
        "timeout",
        "systemd-run",
        "xvfb-run",
        "nsenter",
    ] {
        assert!(super::spec::spec(name).is_some(), "{name}");
        assert!(super::LOOKED_THROUGH.contains(&name), "{name}");
    }
}
