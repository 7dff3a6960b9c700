//! Recognition of install commands, and judging them against the fixture OSV database.

use std::path::Path;

use super::*;
use crate::guard::osv::{OsvDb, fixture_db};
use crate::guard::shell::analyze;

/// Every install of every simple command in `line`, as `eco:name@version` (`*` when not
/// pinned), `local:spec`, `remote:spec` or `unresolved:spec`.
fn found(line: &str, cwd: &Path) -> Vec<String> {
    analyze(line)
        .commands
        .iter()
        .flat_map(|c| installs(c, cwd))
        .map(|i| match &i.origin {
            Origin::Registry => format!(
                "{}:{}@{}",
                i.ecosystem,
                i.name,
                i.version.as_deref().unwrap_or("*")
            ),
            Origin::Local => format!("local:{}", i.spec),
            Origin::Remote => format!("remote:{}", i.spec),
            Origin::Unresolved(_) => format!("unresolved:{}", i.spec),
        })
        .collect()
}

#[test]
fn install_commands_are_recognised_with_their_versions() {
    let cwd = Path::new("/nonexistent-cwd");
    let table: &[(&str, &[&str])] = &[
        // pip and friends
        ("pip install jinja2==3.1.2", &["PyPI:jinja2@3.1.2"]),
        (
            "pip3 install 'Jinja2[i18n]==2.10' requests",
            &["PyPI:Jinja2@2.10", "PyPI:requests@*"],
        ),
        ("pip3.12 install -U 'requests>=2.0'", &["PyPI:requests@*"]),
        (
            "pip install 'numpy==1.*' 'six (==1.16.0)'",
            &["PyPI:numpy@*", "PyPI:six@1.16.0"],
        ),
        (
            "pip install 'idna==3.6; python_version >= \"3.8\"'",
            &["PyPI:idna@3.6"],
        ),
        (
            "pip install 'a>=1,<2' 'b===1.0'",
            &["PyPI:a@*", "PyPI:b@1.0"],
        ),
        ("python -m pip install flask==2.0.1", &["PyPI:flask@2.0.1"]),
        (
            "python3.11 -I -m pip install --user django==4.2",
            &["PyPI:django@4.2"],
        ),
        ("py -mpip install six", &["PyPI:six@*"]),
        ("python -c 'print(1)' -m pip install x", &[]),
        ("uv pip install urllib3==1.26.5", &["PyPI:urllib3@1.26.5"]),
        (
            "uv --offline pip install -p 3.12 attrs==23.1.0",
            &["PyPI:attrs@23.1.0"],
        ),
        (
            "uv add fastapi==0.100.0 --optional web",
            &["PyPI:fastapi@0.100.0"],
        ),
        (
            "uv tool install --from 'httpie==3.2.1' http",
            &["PyPI:httpie@3.2.1"],
        ),
        ("pipx install black==23.1.0", &["PyPI:black@23.1.0"]),
        ("pip install -e .", &["local:."]),
        ("pip install -e.", &["local:."]),
        (
            "pip install ./dist/pkg-1.0-py3-none-any.whl git+https://github.com/psf/requests@v2.31.0",
            &[
                "local:./dist/pkg-1.0-py3-none-any.whl",
                "remote:git+https://github.com/psf/requests@v2.31.0",
            ],
        ),
        (
            "pip install 'pkg @ https://example.com/pkg.tar.gz'",
            &["remote:pkg @ https://example.com/pkg.tar.gz"],
        ),
        ("pip install src/mypkg", &["local:src/mypkg"]),
        (
            "pip install --index-url https://pypi.example/simple -t out requests==2.28.0",
            &["PyPI:requests@2.28.0"],
        ),
        ("pip download requests==2.0.0", &[]),
        ("pip list", &[]),
        (
            "sudo -H pip install jinja2==2.11.3",
            &["PyPI:jinja2@2.11.3"],
        ),
        (
            "bash -c 'pip install jinja2==3.1.2 && npm i lodash'",
            &["PyPI:jinja2@3.1.2", "npm:lodash@*"],
        ),
        ("pip install $PKG", &["unresolved:$PKG"]),
        ("pip $CMD requests", &["unresolved:$CMD"]),
        (
            "pip install -r missing-file.txt",
            &["unresolved:-r missing-file.txt"],
        ),
        // node
        ("npm install lodash@4.17.20", &["npm:lodash@4.17.20"]),
        (
            "npm i -D @types/node@20.1.0 typescript",
            &["npm:@types/node@20.1.0", "npm:typescript@*"],
        ),
        (
            "npm install lodash@^4.17.0 express@latest react@18",
            &["npm:lodash@*", "npm:express@*", "npm:react@*"],
        ),
        (
            "npm --prefix web add left-pad@v1.3.0",
            &["npm:left-pad@1.3.0"],
        ),
        (
            "npm isntall -g my-lodash@npm:lodash@4.17.15",
            &["npm:lodash@4.17.15"],
        ),
        (
            "npm install ./local-pkg user/repo https://x.test/a.tgz github:a/b",
            &[
                "local:./local-pkg",
                "remote:user/repo",
                "remote:https://x.test/a.tgz",
                "remote:github:a/b",
            ],
        ),
        ("npm ci", &[]),
        ("npm install", &[]),
        ("npm run install", &[]),
        ("yarn add react@18.2.0", &["npm:react@18.2.0"]),
        ("yarn global add serve", &["npm:serve@*"]),
        (
            "yarn workspace web add lodash-es@4.17.20",
            &["npm:lodash-es@4.17.20"],
        ),
        ("pnpm add -D vitest@1.0.0", &["npm:vitest@1.0.0"]),
        ("pnpm --filter api add zod", &["npm:zod@*"]),
        ("bun add hono@4.0.0", &["npm:hono@4.0.0"]),
        // cargo
        ("cargo install ripgrep", &["crates.io:ripgrep@*"]),
        (
            "cargo install ripgrep@14.1.0",
            &["crates.io:ripgrep@14.1.0"],
        ),
        (
            "cargo install hyper --version 0.14.9",
            &["crates.io:hyper@0.14.9"],
        ),
        (
            "cargo +nightly install --locked cargo-audit --version '^0.18'",
            &["crates.io:cargo-audit@*"],
        ),
        (
            "cargo add serde@1.0.100 time@=0.1.43 tokio -F full",
            &[
                "crates.io:serde@1.0.100",
                "crates.io:time@0.1.43",
                "crates.io:tokio@*",
            ],
        ),
        (
            "cargo add --git https://github.com/x/y y",
            &["remote:https://github.com/x/y"],
        ),
        ("cargo install --path .", &["local:."]),
        ("cargo build --release", &[]),
        // go
        (
            "go get golang.org/x/text@v0.3.7",
            &["Go:golang.org/x/text@v0.3.7"],
        ),
        (
            "go install golang.org/x/tools/gopls@latest",
            &["Go:golang.org/x/tools/gopls@*"],
        ),
        (
            "go get -u=patch -t golang.org/x/net",
            &["Go:golang.org/x/net@*"],
        ),
        (
            "go get -modfile=tools.mod golang.org/x/text/language@v0.3.7 example.com/m@none",
            &["Go:golang.org/x/text/language@v0.3.7"],
        ),
        (
            "go get ./... && go install cmd/vet",
            &["local:./...", "local:cmd/vet"],
        ),
        (
            "go install example.com/cmd@v1.2.4-0.20191109021931-daa7c04131f5",
            &["Go:example.com/cmd@v1.2.4-0.20191109021931-daa7c04131f5"],
        ),
        ("go build ./...", &[]),
        // gem
        ("gem install rack -v 2.2.8", &["RubyGems:rack@2.2.8"]),
        (
            "gem install rails:7.0.4 rake",
            &["RubyGems:rails@7.0.4", "RubyGems:rake@*"],
        ),
        ("gem install rack --version '~> 2.2'", &["RubyGems:rack@*"]),
        ("gem install ./my.gem", &["local:./my.gem"]),
        ("gem list", &[]),
        ("ls -la && echo pip install x", &[]),
    ];
    assert!(table.len() >= 25);
    for (line, want) in table {
        assert_eq!(found(line, cwd), *want, "{line}");
    }
}

#[test]
fn requirements_files_are_read_with_includes_comments_and_continuations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reqs = dir.path().join("reqs");
    std::fs::create_dir_all(&reqs).expect("mkdir");
    std::fs::write(
        reqs.join("dev.txt"),
        "-r base.txt\n# a comment\nflask==0.12 --hash=sha256:abc  # pinned\n\n-e ./lib\n\
         requests \\\n  ==2.0.0\n--index-url https://pypi.example/simple\n${TOKEN}pkg\n",
    )
    .expect("write");
    std::fs::write(
        reqs.join("base.txt"),
        "jinja2==2.10 ; python_version >= '3'\n",
    )
    .expect("write");
    assert_eq!(
        found("pip install -rreqs/dev.txt", dir.path()),
        [
            "PyPI:jinja2@2.10",
            "PyPI:flask@0.12",
            "local:./lib",
            "PyPI:requests@2.0.0",
            "unresolved:${TOKEN}pkg"
        ]
    );
    let cmd = &analyze("pip install -r reqs/dev.txt").commands[0];
    let sources: Vec<String> = installs(cmd, dir.path())
        .into_iter()
        .map(|i| i.source)
        .collect();
    assert_eq!(
        sources[..2],
        ["base.txt:1".to_string(), "reqs/dev.txt:3".to_string()]
    );
    assert_eq!(sources[3], "reqs/dev.txt:6");
    // a file larger than the limit is not read
    let big = "#".repeat(MAX_REQUIREMENTS_BYTES as usize + 1);
    std::fs::write(reqs.join("big.txt"), big).expect("write");
    let r = installs(
        &analyze("pip install -r reqs/big.txt").commands[0],
        dir.path(),
    );
    assert!(
        matches!(&r[0].origin, Origin::Unresolved(why) if why.contains("larger than")),
        "{r:?}"
    );
    // a file that includes itself stops at the depth limit
    std::fs::write(reqs.join("loop.txt"), "-r loop.txt\n").expect("write");
    let looped = found("pip install -r reqs/loop.txt", dir.path());
    assert_eq!(looped, ["unresolved:-r loop.txt"]);
}

fn judge(line: &str, db: Option<&dyn Advisories>, allow: bool, cwd: &Path) -> Vec<InstallReason> {
    analyze(line)
        .commands
        .iter()
        .flat_map(|c| judge_installs(c, cwd, db, allow))
        .collect()
}

use crate::guard::decision::Decision;
use crate::guard::osv::Advisories;

#[test]
fn vulnerable_pins_are_denied_with_ids_and_the_first_fixed_version() {
    let db = fixture_db();
    let cwd = Path::new("/");
    for (line, id, alias, fixed) in [
        (
            "pip install jinja2==3.1.2",
            "GHSA-h5c8-rqwp-cp95",
            "CVE-2024-22195",
            "3.1.3",
        ),
        (
            "pip install Requests==2.30.0",
            "GHSA-j8r2-6x86-q33q",
            "CVE-2023-32681",
            "2.31.0",
        ),
        (
            "npm i lodash@4.17.20",
            "GHSA-35jh-r3h4-6jhm",
            "CVE-2021-23337",
            "4.17.21",
        ),
        (
            "cargo install hyper --version 0.14.9",
            "RUSTSEC-2021-0078",
            "CVE-2021-32715",
            "0.14.10",
        ),
        (
            "cargo add time@0.2.10",
            "RUSTSEC-2020-0071",
            "CVE-2020-26235",
            "0.2.23",
        ),
        (
            "go get golang.org/x/text@v0.3.7",
            "GO-2022-1059",
            "CVE-2022-32149",
            "0.3.8",
        ),
        (
            "gem install rack -v 2.2.8",
            "GHSA-54rr-7fvw-6x8f",
            "CVE-2024-26146",
            "2.2.8.1",
        ),
    ] {
        let r = judge(line, Some(&db), false, cwd);
        assert_eq!(r.len(), 1, "{line}: {r:?}");
        assert_eq!(
            (r[0].decision, r[0].rule),
            (Decision::Deny, judge::RULE_VULNERABLE),
            "{line}"
        );
        for part in [id, alias, &format!("first fixed version: {fixed}")] {
            assert!(r[0].message.contains(part), "{line}: {}", r[0].message);
        }
    }
    // the PYSEC copy of the requests advisory is not listed twice
    let r = judge("pip install requests==2.30.0", Some(&db), false, cwd);
    assert!(!r[0].message.contains("PYSEC-2023-74"), "{}", r[0].message);
}

#[test]
fn fixed_versions_and_local_installs_pass() {
    let db = fixture_db();
    for line in [
        "pip install jinja2==3.1.3 requests==2.31.0",
        "npm install lodash@4.17.21",
        "cargo install time@0.2.3",
        "go get golang.org/x/text@v0.3.8",
        "gem install rack:2.2.8.1",
        "pip install flask==3.0.0",
        "pip install -e .",
        "ls -la",
    ] {
        assert_eq!(judge(line, Some(&db), false, Path::new("/")), [], "{line}");
    }
}

#[test]
fn unpinned_installs_ask_unless_the_policy_allows_them() {
    let db = fixture_db();
    let cwd = Path::new("/");
    let r = judge("pip install requests 'flask>=2'", Some(&db), false, cwd);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (r[0].decision, r[0].rule),
        (Decision::Ask, judge::RULE_UNPINNED)
    );
    assert!(
        r[0].message
            .contains("`requests` (PyPI), `flask>=2` (PyPI) are not pinned"),
        "{}",
        r[0].message
    );
    assert!(
        r[0].message.contains("latest, which is unknown"),
        "{}",
        r[0].message
    );
    assert_eq!(judge("pip install requests", Some(&db), true, cwd), []);
    let r = judge(
        "pip install git+https://github.com/x/y",
        Some(&db),
        false,
        cwd,
    );
    assert_eq!(
        (r[0].decision, r[0].rule),
        (Decision::Ask, judge::RULE_UNCHECKED)
    );
    assert_eq!(
        judge(
            "pip install git+https://github.com/x/y",
            Some(&db),
            true,
            cwd
        ),
        []
    );
}

#[test]
fn without_a_database_every_registry_install_asks() {
    let r = judge(
        "pip install jinja2==3.1.3 ./local",
        None,
        true,
        Path::new("/"),
    );
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (r[0].decision, r[0].rule),
        (Decision::Ask, judge::RULE_NO_DATABASE)
    );
    assert!(r[0].message.contains("pi-mcp osv update"));
}

#[test]
fn what_cannot_be_read_or_compared_asks() {
    let db = fixture_db();
    let cwd = Path::new("/");
    let r = judge("pip install \"jinja2==$V\"", Some(&db), true, cwd);
    assert_eq!(
        (r[0].decision, r[0].rule),
        (Decision::Ask, judge::RULE_UNRESOLVED)
    );
    let r = judge("pip install 'jinja2===not.a version'", Some(&db), true, cwd);
    assert_eq!(
        (r[0].decision, r[0].rule),
        (Decision::Ask, judge::RULE_ERROR),
        "{r:?}"
    );
}

#[test]
fn a_requirements_file_names_the_vulnerable_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("requirements.txt"),
        "flask==3.0.0\njinja2==3.1.2\n",
    )
    .expect("write");
    let r = judge(
        "pip install -r requirements.txt",
        Some(&fixture_db()),
        false,
        dir.path(),
    );
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        r[0].message
            .contains("jinja2 3.1.2 (PyPI) (from requirements.txt:2)"),
        "{}",
        r[0].message
    );
}

#[test]
fn packages_affected_in_every_version_are_denied_even_unpinned() {
    let db = OsvDb::from_json_records(
        "inline",
        [
            serde_json::json!({"id": "MAL-2022-1", "summary": "Malicious code in evil-pkg (npm)",
            "affected": [{"package": {"ecosystem": "npm", "name": "evil-pkg"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]}),
        ],
    );
    let r = judge("npm install evil-pkg", Some(&db), true, Path::new("/"));
    assert_eq!(
        (r[0].decision, r[0].rule),
        (Decision::Deny, judge::RULE_VULNERABLE)
    );
    assert!(
        r[0].message
            .contains("every version of which is affected by MAL-2022-1"),
        "{}",
        r[0].message
    );
}
