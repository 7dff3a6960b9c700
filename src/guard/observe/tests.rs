//! The observation classifier on the built-in policy: everyday probes are observation, every
//! disguised write or change is not.

use super::*;

fn guard() -> Guard {
    Guard::load(None).expect("the built-in policy loads")
}

const OBSERVATION: &[&str] = &[
    "df -h",
    "curl -s localhost/health",
    "curl -sS -m 5 http://127.0.0.1:8080/health",
    "curl -sI https://example.com/",
    "ps aux",
    "ps aux | grep nginx",
    "tail -n 50 /var/log/app.log",
    "systemctl status nginx",
    "systemctl --no-pager status nginx",
    "systemctl is-active nginx",
    "journalctl -u nginx -n 50 --no-pager",
    "kubectl get pods",
    "kubectl -n prod get pods -o wide",
    "kubectl logs deploy/web --tail=100",
    "kubectl describe pod web-1",
    "git status",
    "git --no-pager log --oneline -5",
    "git diff HEAD~1",
    "find /var/log -name '*.log' -mtime -1",
    "free -m && uptime",
    "du -sh /var/log 2>/dev/null | sort -h",
    "cat app.log | grep ERROR | wc -l",
    "ss -tlnp",
    "df -h; free -m",
    "timeout 5 curl -s http://localhost:9090/-/healthy",
    "echo \"$(date -u) $(uptime)\"",
    "docker ps -a",
    "dmesg -T | tail -20",
    "ls -la /var/log/*.log",
    "jq .status status.json",
    "sort -k2 -n data.txt | uniq -c",
    "lsof -i :8080",
    "date -u",
    "cd /var/log && tail -n 20 syslog",
    "grep -c ERROR app.log 2>&1",
    "curl -s localhost/health >/dev/null && echo up",
];

const NOT_OBSERVATION: &[&str] = &[
    "curl -o /etc/x http://example.com",
    "curl -X POST http://localhost/admin/restart",
    "curl -d 'a=1' localhost",
    "curl --data-binary @payload localhost",
    "curl -sXPOST localhost",
    "curl --outp /tmp/x localhost",
    "curl gopher://localhost:6379/_FLUSHALL",
    "curl -w '%output{/tmp/x}' localhost",
    "curl $URL",
    "tail -f x > y",
    "cat a > b",
    "echo hi >> app.log",
    "ps aux > /tmp/ps.txt",
    "df -h | tee /tmp/out",
    "find . -delete",
    "find . -name '*.tmp' -exec rm {} \\;",
    "find / -fprint /tmp/list",
    "find $DIR -name x",
    "systemctl restart x",
    "systemctl --no-pager restart x",
    "systemctl",
    "ps; rm x",
    "ps aux && rm -rf /tmp/x",
    "kubectl delete pod web-1",
    "kubectl -n get delete pod x",
    "kubectl apply -f x.yaml",
    "git push",
    "git -c core.pager=sh log",
    "git diff --output=/tmp/x",
    "sort -o out.txt in.txt",
    "sort --outp=out.txt in.txt",
    "uniq in.txt out.txt",
    "date -s '2020-01-01'",
    "journalctl --vacuum-size=1G",
    "dmesg -C",
    "ss -K dst 10.0.0.1",
    "sed -i s/a/b/ app.conf",
    "rm x",
    "echo $(rm -rf x)",
    "$CMD status",
    "sudo cat /etc/shadow",
    "ls | xargs rm",
    "awk '{print $1}' app.log",
    "python3 -c 'print(1)'",
    "docker restart web",
    "timeout 5 rm x",
    "nice -n 5 touch x",
    "ls > listing.txt",
    "cat .env",
    "bash -c 'rm x'",
    "",
    "X=1",
];

#[test]
fn everyday_probes_are_observation() {
    let g = guard();
    let ctx = Guard::example_context();
    assert!(OBSERVATION.len() >= 25);
    for c in OBSERVATION {
        assert_eq!(
            g.not_observation(c, &ctx),
            None,
            "`{c}` should be observation"
        );
    }
}

#[test]
fn writes_changes_and_the_unknown_are_not_observation() {
    let g = guard();
    let ctx = Guard::example_context();
    assert!(NOT_OBSERVATION.len() >= 25);
    for c in NOT_OBSERVATION {
        assert!(!g.is_observation(c, &ctx), "`{c}` must not be observation");
    }
}

#[test]
fn a_policy_without_the_list_has_no_observation() {
    let file = crate::guard::PolicyFile::parse("{}", "empty").expect("an empty policy parses");
    let g = Guard::new(file, "empty").expect("compiles");
    let why = g
        .not_observation("df -h", &Guard::example_context())
        .expect("nothing is observation");
    assert!(why.contains("observe_commands"), "{why}");
}

#[test]
fn reasons_name_what_is_wrong() {
    let g = guard();
    let ctx = Guard::example_context();
    let why = |c: &str| g.not_observation(c, &ctx).unwrap_or_default();
    assert!(why("systemctl restart x").contains("read-only subcommands"));
    assert!(why("curl -o /tmp/x localhost").contains("-o"));
    assert!(why("tail -f x > y").contains("writes to `y`"));
    assert!(why("ps; rm x").contains("`rm`"));
}

#[test]
fn abbreviated_long_flags_match_what_they_abbreviate() {
    assert!(flag_matches("--outp", "--output"));
    assert!(flag_matches("--output", "--output"));
    assert!(!flag_matches("--", "--output"));
    assert!(!flag_matches("-o", "--output"));
    assert!(!flag_matches("--outputs", "--output"));
}
