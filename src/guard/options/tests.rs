//! Tests of reading listed options and their values.

use super::*;

fn table(json: &str) -> ProgramOptions {
    let specs: Vec<OptionSpec> = serde_json::from_str(json).expect("specs parse");
    ProgramOptions::compile(&specs).expect("compiles")
}

fn uses(t: &ProgramOptions, argv: &[&str]) -> Vec<(Effect, String)> {
    let words: Vec<Word> = argv.iter().map(|w| Word::literal(*w)).collect();
    t.find(&words)
        .into_iter()
        .map(|u| (u.effect, u.value.text))
        .collect()
}

#[test]
fn reads_long_short_keyed_and_word_options() {
    let t = table(
        r#"[{"id": "tar", "program": ["tar"], "short_values": "fC",
             "runs": ["--to-command", "-I", "--checkpoint-action exec"], "writes": ["--index-file"]},
            {"id": "git", "program": ["git"], "runs": ["-c core.pager", "-c alias.*"]},
            {"id": "find", "program": ["find"], "writes": ["-fprint"]},
            {"id": "vim", "program": ["vim"], "interprets": ["+", "-c"]},
            {"id": "rebase", "program": ["git"], "subcommands": ["rebase"], "runs": ["-x"]}]"#,
    );
    let run = |v: &str| (Effect::Runs, v.to_string());
    assert_eq!(
        uses(&t, &["tar", "--to-command=sh -c id", "-xf", "a"]),
        [run("sh -c id")]
    );
    assert_eq!(
        uses(&t, &["tar", "--to-com", "id", "-xf", "a"]),
        [run("id")]
    );
    assert_eq!(
        uses(&t, &["tar", "-cI", "zstd -19", "-f", "a"]),
        [run("zstd -19")]
    );
    assert_eq!(uses(&t, &["tar", "-Ipigz", "-cf", "a"]), [run("pigz")]);
    // `f` takes a value: the `I` in `-xfI.tar` is part of the file name.
    assert!(uses(&t, &["tar", "-xfI.tar"]).is_empty());
    assert_eq!(
        uses(
            &t,
            &["tar", "--checkpoint=1", "--checkpoint-action=exec=sh x.sh"]
        ),
        [run("sh x.sh")]
    );
    assert!(uses(&t, &["tar", "--checkpoint-action=dot"]).is_empty());
    assert_eq!(
        uses(&t, &["tar", "-cf", "a", "--index-file", "/etc/x", "src"]),
        [(Effect::Writes, "/etc/x".to_string())]
    );
    assert_eq!(
        uses(&t, &["git", "-c", "core.pager=sh -c id", "log"]),
        [run("sh -c id")]
    );
    assert_eq!(
        uses(&t, &["git", "-c", "Core.Pager=less", "log"]),
        [run("less")]
    );
    assert_eq!(uses(&t, &["git", "-c", "alias.x=!id", "x"]), [run("!id")]);
    assert!(uses(&t, &["git", "-c", "user.name=x", "commit"]).is_empty());
    assert!(uses(&t, &["git", "clean", "-xf", "d"]).is_empty());
    assert_eq!(
        uses(&t, &["git", "rebase", "-x", "make", "main"]),
        [run("make")]
    );
    assert_eq!(
        uses(&t, &["find", ".", "-fprint", "/etc/x"]),
        [(Effect::Writes, "/etc/x".to_string())]
    );
    assert_eq!(
        uses(&t, &["vim", "+!id", "x"]),
        [(Effect::Interprets, "!id".to_string())]
    );
    assert!(uses(&t, &["vim", "notes.txt"]).is_empty());
}

#[test]
fn a_bad_table_names_the_field() {
    let specs: Vec<OptionSpec> =
        serde_json::from_str(r#"[{"id": "x", "program": ["tar"], "runs": ["to-command"]}]"#)
            .expect("parses");
    let (field, _) = ProgramOptions::compile(&specs).expect_err("refused");
    assert_eq!(field, "program_options[0].runs[0]");
    let specs: Vec<OptionSpec> =
        serde_json::from_str(r#"[{"id": "x", "program": ["tar"]}]"#).expect("parses");
    assert!(ProgramOptions::compile(&specs).is_err());
}
