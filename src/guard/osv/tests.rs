//! Tests of [`super::OsvDb`]: the real fixture records and edge cases written inline.

use super::*;

fn ids(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|f| f.id.as_str()).collect()
}

fn check(db: &OsvDb, eco: Ecosystem, name: &str, version: &str) -> Vec<Finding> {
    db.check(eco, name, version)
        .unwrap_or_else(|e| panic!("{eco} {name} {version}: {e}"))
}

/// A one-record database with one affected package `demo`.
fn one(eco: Ecosystem, affected: serde_json::Value) -> OsvDb {
    let mut a = affected;
    a["package"] = serde_json::json!({"ecosystem": eco.as_str(), "name": "demo"});
    OsvDb::from_json_records(
        "inline",
        [serde_json::json!({"id": "TEST-1", "summary": "demo flaw", "affected": [a]})],
    )
}

fn ranges(kind: &str, events: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"ranges": [{"type": kind, "events": events}]})
}

#[test]
fn the_fixture_loads_every_ecosystem() {
    let db = fixture_db();
    assert_eq!(db.len(), 8);
    assert_eq!(db.skipped(), 0);
    let per = db.packages_per_ecosystem();
    assert_eq!(per.len(), 5, "{per:?}");
    assert!(db.describe().contains("8 advisories"));
    let shown = format!("{db:?}");
    assert!(shown.contains("records: 8") && shown.len() < 200, "{shown}");
}

#[test]
fn fixture_records_match_with_their_first_fixed_versions() {
    let db = fixture_db();
    // ecosystem, package, version, advisories, first fixed version
    type Case<'a> = (Ecosystem, &'a str, &'a str, &'a [&'a str], Option<&'a str>);
    let cases: &[Case] = &[
        (
            Ecosystem::PyPI,
            "jinja2",
            "3.1.2",
            &["GHSA-h5c8-rqwp-cp95"],
            Some("3.1.3"),
        ),
        (
            Ecosystem::PyPI,
            "Jinja2",
            "2.10",
            &["GHSA-h5c8-rqwp-cp95"],
            Some("3.1.3"),
        ),
        (
            Ecosystem::PyPI,
            "jinja2",
            "3.1.3rc1",
            &["GHSA-h5c8-rqwp-cp95"],
            Some("3.1.3"),
        ),
        (Ecosystem::PyPI, "jinja2", "3.1.3", &[], None),
        (Ecosystem::PyPI, "jinja2", "3.1.3.post1", &[], None),
        // GHSA and its PYSEC copy are one finding
        (
            Ecosystem::PyPI,
            "requests",
            "2.28.0",
            &["GHSA-j8r2-6x86-q33q"],
            Some("2.31.0"),
        ),
        (
            Ecosystem::PyPI,
            "Requests",
            "2.30",
            &["GHSA-j8r2-6x86-q33q"],
            Some("2.31.0"),
        ),
        (Ecosystem::PyPI, "requests", "2.31.0", &[], None),
        (Ecosystem::PyPI, "requests", "2.2.1", &[], None),
        (
            Ecosystem::Npm,
            "lodash",
            "4.17.20",
            &["GHSA-35jh-r3h4-6jhm"],
            Some("4.17.21"),
        ),
        (
            Ecosystem::Npm,
            "lodash-es",
            "4.17.15",
            &["GHSA-35jh-r3h4-6jhm"],
            Some("4.17.21"),
        ),
        (Ecosystem::Npm, "lodash", "4.17.21", &[], None),
        (
            Ecosystem::Npm,
            "lodash",
            "4.17.21-pre",
            &["GHSA-35jh-r3h4-6jhm"],
            Some("4.17.21"),
        ),
        (
            Ecosystem::CratesIo,
            "hyper",
            "0.14.9",
            &["RUSTSEC-2021-0078"],
            Some("0.14.10"),
        ),
        (Ecosystem::CratesIo, "hyper", "0.14.10", &[], None),
        (
            Ecosystem::CratesIo,
            "time",
            "0.1.43",
            &["RUSTSEC-2020-0071"],
            Some("0.2.0"),
        ),
        (Ecosystem::CratesIo, "time", "0.2.3", &[], None),
        (
            Ecosystem::CratesIo,
            "time",
            "0.2.22",
            &["RUSTSEC-2020-0071"],
            Some("0.2.23"),
        ),
        (Ecosystem::CratesIo, "time", "0.3.0", &[], None),
        (
            Ecosystem::Go,
            "golang.org/x/text",
            "v0.3.7",
            &["GO-2022-1059"],
            Some("0.3.8"),
        ),
        (
            Ecosystem::Go,
            "golang.org/x/text/language",
            "v0.3.7",
            &["GO-2022-1059"],
            Some("0.3.8"),
        ),
        (Ecosystem::Go, "golang.org/x/text", "v0.3.8", &[], None),
        (
            Ecosystem::RubyGems,
            "rack",
            "2.2.8",
            &["GHSA-54rr-7fvw-6x8f"],
            Some("2.2.8.1"),
        ),
        (Ecosystem::RubyGems, "rack", "2.2.8.1", &[], None),
        (
            Ecosystem::RubyGems,
            "rack",
            "3.0.9",
            &["GHSA-54rr-7fvw-6x8f"],
            Some("3.0.9.1"),
        ),
        (
            Ecosystem::RubyGems,
            "rack",
            "1.6.13",
            &["GHSA-54rr-7fvw-6x8f"],
            Some("2.0.9.4"),
        ),
        (Ecosystem::RubyGems, "rack", "3.1.0", &[], None),
        (Ecosystem::PyPI, "flask", "0.1", &[], None),
    ];
    for (eco, name, version, want, fixed) in cases {
        let got = check(&db, *eco, name, version);
        assert_eq!(ids(&got), *want, "{eco} {name} {version}");
        if let Some(f) = got.first() {
            assert_eq!(f.fixed.as_deref(), *fixed, "{eco} {name} {version}");
            assert!(!f.summary.is_empty());
        }
    }
}

#[test]
fn aliases_and_summaries_come_from_the_record() {
    let db = fixture_db();
    let f = check(&db, Ecosystem::PyPI, "jinja2", "3.1.2");
    assert_eq!(f[0].aliases, vec!["CVE-2024-22195".to_string()]);
    assert!(
        f[0].summary
            .starts_with("Jinja vulnerable to HTML attribute injection")
    );
    // GO records have no summary: the first line of details stands in.
    let g = check(&db, Ecosystem::Go, "golang.org/x/text", "v0.1.0");
    assert!(
        g[0].summary
            .starts_with("An attacker may cause a denial of service")
    );
}

#[test]
fn an_unparsable_version_is_an_error_not_a_pass() {
    let db = fixture_db();
    let e = db.check(Ecosystem::PyPI, "jinja2", "not a version");
    assert!(matches!(e, Err(AdvisoryError::BadVersion { .. })), "{e:?}");
    // unknown packages need no version parsing
    assert!(db.check(Ecosystem::PyPI, "unknown-pkg", "x").is_ok());
}

#[test]
fn last_affected_is_inclusive() {
    let db = one(
        Ecosystem::Npm,
        ranges(
            "ECOSYSTEM",
            serde_json::json!([{"introduced": "1.0.0"}, {"last_affected": "1.4.2"}]),
        ),
    );
    for (v, hit) in [
        ("0.9.0", false),
        ("1.0.0", true),
        ("1.4.2", true),
        ("1.4.3", false),
    ] {
        let got = check(&db, Ecosystem::Npm, "demo", v);
        assert_eq!(!got.is_empty(), hit, "{v}");
        if let Some(f) = got.first() {
            assert_eq!(f.fixed, None, "last_affected names no fix");
        }
    }
}

#[test]
fn pep440_pre_releases_and_epochs_in_ranges() {
    let db = one(
        Ecosystem::PyPI,
        ranges(
            "ECOSYSTEM",
            serde_json::json!([{"introduced": "2.0b1"}, {"fixed": "2.0.1"}]),
        ),
    );
    for (v, hit) in [
        ("2.0a5", false),
        ("2.0b1", true),
        ("2.0rc2", true),
        ("2.0", true),
        ("2.0.1rc1", true),
        ("2.0.1", false),
        ("2.0.post1", true),
        ("1!1.0", false), // epoch 1 is after every epoch-0 version
        ("1.9", false),
    ] {
        assert_eq!(
            !check(&db, Ecosystem::PyPI, "demo", v).is_empty(),
            hit,
            "{v}"
        );
    }
}

#[test]
fn unsorted_events_and_several_ranges() {
    let db = one(
        Ecosystem::CratesIo,
        serde_json::json!({"ranges": [
            {"type": "SEMVER", "events": [{"fixed": "1.5.0"}, {"introduced": "1.0.0"}]},
            {"type": "SEMVER", "events": [{"introduced": "2.0.0-alpha.1"}, {"fixed": "2.2.0"}]}
        ]}),
    );
    for (v, fixed) in [
        ("0.9.0", None),
        ("1.2.0", Some("1.5.0")),
        ("1.7.0", None),
        ("2.0.0-alpha.1", Some("2.2.0")),
        ("2.0.0-alpha.0", None),
        ("2.1.9", Some("2.2.0")),
        ("2.2.0", None),
    ] {
        let got = check(&db, Ecosystem::CratesIo, "demo", v);
        assert_eq!(got.first().and_then(|f| f.fixed.as_deref()), fixed, "{v}");
        assert_eq!(got.is_empty(), fixed.is_none(), "{v}");
    }
}

#[test]
fn versions_lists_and_limits() {
    let db = one(
        Ecosystem::PyPI,
        serde_json::json!({
            "versions": ["0.5"],
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"limit": "1.5"}]}]
        }),
    );
    for (v, hit) in [
        ("0.5", true),
        ("0.5.0", true),
        ("0.6", false),
        ("1.2", true),
        ("1.5", false),
    ] {
        assert_eq!(
            !check(&db, Ecosystem::PyPI, "demo", v).is_empty(),
            hit,
            "{v}"
        );
    }
}

#[test]
fn go_semver_ranges_take_the_v_prefix_and_pseudo_versions() {
    let db = one(
        Ecosystem::Go,
        ranges(
            "SEMVER",
            serde_json::json!([{"introduced": "0"}, {"fixed": "1.2.4"}]),
        ),
    );
    for (v, hit) in [
        ("v1.2.3", true),
        ("v1.2.4", false),
        ("v1.2.4-0.20191109021931-daa7c04131f5", true),
        ("v0.0.0-20180101000000-abcdefabcdef", true),
        ("v1.3.0+incompatible", false),
    ] {
        assert_eq!(!check(&db, Ecosystem::Go, "demo", v).is_empty(), hit, "{v}");
    }
}

#[test]
fn unfixed_advisories_affect_every_version() {
    let db = OsvDb::from_json_records(
        "inline",
        [
            serde_json::json!({"id": "MAL-2024-1", "summary": "Malicious code in evil-pkg (npm)",
                "affected": [{"package": {"ecosystem": "npm", "name": "evil-pkg"},
                    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]}),
            serde_json::json!({"id": "GHSA-x", "summary": "fixed one",
                "affected": [{"package": {"ecosystem": "npm", "name": "good-pkg"},
                    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.0"}]}]}]}),
            serde_json::json!({"id": "GHSA-w", "withdrawn": "2024-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "npm", "name": "good-pkg"},
                    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]}),
        ],
    );
    assert_eq!(ids(&db.unfixed(Ecosystem::Npm, "evil-pkg")), ["MAL-2024-1"]);
    assert!(db.unfixed(Ecosystem::Npm, "good-pkg").is_empty());
    assert_eq!(
        ids(&check(&db, Ecosystem::Npm, "evil-pkg", "9.9.9")),
        ["MAL-2024-1"]
    );
    assert!(
        check(&db, Ecosystem::Npm, "good-pkg", "0.1.0").len() == 1,
        "withdrawn is ignored"
    );
}

#[test]
fn malformed_records_are_skipped_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let py = dir.path().join("PyPI");
    std::fs::create_dir_all(&py).expect("mkdir");
    std::fs::write(py.join("bad.json"), "{not json").expect("write");
    std::fs::write(py.join("null.json"), r#"{"id":"X-1","aliases":null,"affected":[{"package":{"ecosystem":"PyPI","name":"Some_Pkg"},"versions":null,"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0"}]}]}]}"#).expect("write");
    std::fs::write(py.join("notes.txt"), "ignored").expect("write");
    let huge = format!(
        "{{\"id\":\"X-2\",\"details\":\"{}\"}}",
        "x".repeat(MAX_RECORD_BYTES as usize)
    );
    std::fs::write(py.join("huge.json"), huge).expect("write");
    let db = OsvDb::load(dir.path()).expect("load");
    assert_eq!((db.len(), db.skipped()), (1, 2), "bad.json and huge.json");
    assert_eq!(
        ids(&check(&db, Ecosystem::PyPI, "some.pkg", "0.5")),
        ["X-1"]
    );
}

#[test]
fn a_missing_database_says_how_to_get_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = OsvDb::load(&dir.path().join("nope")).expect_err("missing");
    assert!(e.to_string().contains("pi-mcp osv update"), "{e}");
    let e = OsvDb::load(dir.path()).expect_err("empty");
    assert!(matches!(e, OsvError::Missing(_)));
}

#[test]
fn names_normalise_per_ecosystem() {
    assert_eq!(
        Ecosystem::PyPI.normalize("Zope.Interface"),
        "zope-interface"
    );
    assert_eq!(Ecosystem::PyPI.normalize("a__b-.c"), "a-b-c");
    assert_eq!(Ecosystem::CratesIo.normalize("Serde_JSON"), "serde-json");
    assert_eq!(Ecosystem::Npm.normalize("@Scope/Pkg"), "@Scope/Pkg");
    assert_eq!("crates.io".parse::<Ecosystem>(), Ok(Ecosystem::CratesIo));
    assert_eq!("pypi".parse::<Ecosystem>(), Ok(Ecosystem::PyPI));
    assert!("maven".parse::<Ecosystem>().is_err());
}
