//! The guard against a corpus of disguised destructive commands (every evasion class the
//! gatekeeper must see through: quoting, computed names, paths, flags, wrappers, nested shells,
//! functions, interpreters, remote payloads, redirections, databases and clouds, git history,
//! host disruption, exfiltration, hostile input) and of everyday commands that must stay
//! allowed. Decisions only, through `pi-mcp policy check --batch`: nothing is run.

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::Workspace;

const CORPUS: &str = "tests/data/guard_corpus.jsonl";

fn corpus() -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS);
    std::fs::read_to_string(path)
        .expect("corpus file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("corpus line is JSON"))
        .collect()
}

/// The sandbox level an entry is judged under: its `sandbox` field, else `partial` (writes
/// confined, network and hidden paths not), so that the corpus does not depend on the machine.
fn level(e: &Value) -> &str {
    e["sandbox"].as_str().unwrap_or("partial")
}

/// The verdict on every entry, in order: one `policy check --batch` per sandbox level.
fn judge_by_level(ws: &Workspace, entries: &[Value]) -> Vec<Value> {
    let mut verdicts: Vec<Option<Value>> = vec![None; entries.len()];
    for lvl in ["full", "partial", "none"] {
        let at: Vec<usize> = (0..entries.len())
            .filter(|&i| level(&entries[i]) == lvl)
            .collect();
        if at.is_empty() {
            continue;
        }
        let batch = ws.write(
            &format!("batch-{lvl}.txt"),
            at.iter()
                .map(|&i| format!("{}\n", entries[i]["command"]))
                .collect::<String>(),
        );
        let out = support::cli_decided(
            ws.path(),
            &[
                "policy",
                "check",
                "--sandbox",
                lvl,
                "--json",
                "--batch",
                batch.to_str().unwrap(),
            ],
            &[("HOME", "/home/agent")],
        );
        let got: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(got.len(), at.len(), "{lvl}");
        for (i, v) in at.into_iter().zip(got) {
            assert_eq!(v["sandbox"]["level"], lvl);
            verdicts[i] = Some(v);
        }
    }
    assert!(
        entries
            .iter()
            .all(|e| ["full", "partial", "none"].contains(&level(e))),
        "a corpus entry names an unknown sandbox level"
    );
    verdicts.into_iter().flatten().collect()
}

#[test]
fn disguised_commands_are_never_allowed_and_everyday_ones_are() {
    let entries = corpus();
    let disguised = entries.iter().filter(|e| e["class"] != "safe").count();
    let safe = entries.len() - disguised;
    assert!(
        disguised >= 150 && safe >= 50,
        "{disguised} disguised, {safe} safe"
    );

    let ws = Workspace::new();
    let verdicts = judge_by_level(&ws, &entries);
    assert_eq!(verdicts.len(), entries.len());

    let mut failures = Vec::new();
    let mut by_class: BTreeMap<String, usize> = BTreeMap::new();
    for (e, v) in entries.iter().zip(&verdicts) {
        let class = e["class"].as_str().unwrap();
        *by_class.entry(class.to_string()).or_default() += 1;
        let got = v["decision"].as_str().unwrap();
        let want = e["expect"].as_str().unwrap();
        let never_allowed = class != "safe" && got == "allow";
        if got != want || never_allowed {
            let rules: Vec<&str> = v["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["rule"].as_str().unwrap())
                .collect();
            failures.push(format!(
                "[{class}] {:?}: want {want}, got {got} {rules:?}",
                e["command"].as_str().unwrap()
            ));
        }
        if class == "safe" {
            assert_eq!(want, "allow", "a safe corpus entry must expect allow");
        } else {
            assert_ne!(
                want, "allow",
                "a disguised corpus entry must not expect allow"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} wrong:\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n")
    );
    for class in [
        "quoting",
        "computed-name",
        "paths",
        "flags",
        "wrappers",
        "nested-shells",
        "functions-aliases",
        "interpreters",
        "remote",
        "redirections",
        "db-cloud",
        "git",
        "host",
        "exfiltration",
        "hostile",
        "unknown-program",
        "staged-code",
        "program-options",
    ] {
        assert!(
            by_class.get(class).is_some_and(|n| *n >= 3),
            "class {class} has too few commands"
        );
    }
}
