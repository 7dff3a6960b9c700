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
