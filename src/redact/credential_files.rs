//! The operator's credential files (`~/.aws/credentials`, `~/.netrc`, `~/.pgpass`,
//! `~/.git-credentials`, `~/.docker/config.json`, `~/.kube/config`): read once at start so
//! that their secret values are masked if they ever surface in a tool result, whichever way
//! the agent got at them (a copy, an error message, a CLI's debug output). Only the secret
//! fields are taken, never user names or hosts, and only from small files: a missing,
//! unreadable or oversized file is skipped, never an error.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::secret_set::{SecretSetBuilder, url_parts};

/// Larger files are not credential files worth reading at start.
pub const MAX_CREDENTIAL_FILE: u64 = 64 * 1024;

/// How a file's secrets are found.
#[derive(Debug, Clone, Copy)]
enum Format {
    AwsCredentials,
    Netrc,
    Pgpass,
    GitCredentials,
    DockerConfig,
    KubeConfig,
}

/// Adds the secret values of the credential files under `home` (and where `env` points
/// instead: `AWS_SHARED_CREDENTIALS_FILE`, `KUBECONFIG`, `PGPASSFILE`, `DOCKER_CONFIG`) to `set`.
pub fn collect(home: &Path, env: &dyn Fn(&str) -> Option<String>, set: &mut SecretSetBuilder) {
    let mut files: Vec<(PathBuf, Format)> = vec![
        (home.join(".aws/credentials"), Format::AwsCredentials),
        (home.join(".netrc"), Format::Netrc),
        (home.join(".pgpass"), Format::Pgpass),
        (home.join(".git-credentials"), Format::GitCredentials),
        (home.join(".docker/config.json"), Format::DockerConfig),
        (home.join(".kube/config"), Format::KubeConfig),
    ];
    if let Some(p) = env("AWS_SHARED_CREDENTIALS_FILE") {
        files.push((PathBuf::from(p), Format::AwsCredentials));
    }
    if let Some(p) = env("PGPASSFILE") {
        files.push((PathBuf::from(p), Format::Pgpass));
    }
    if let Some(p) = env("DOCKER_CONFIG") {
        files.push((PathBuf::from(p).join("config.json"), Format::DockerConfig));
    }
    if let Some(list) = env("KUBECONFIG") {
        for p in std::env::split_paths(&list) {
            files.push((p, Format::KubeConfig));
        }
    }
    for (path, format) in files {
        let Some(text) = read_small(&path) else {
            continue;
        };
        let source = shown(&path, home);
        for value in secrets_in(&text, format) {
            set.add(&source, &value);
        }
    }
}

/// `~/...` for files under `home` (the mask names the file, never the value).
fn shown(path: &Path, home: &Path) -> String {
    match path.strip_prefix(home) {
        Ok(rel) => format!("~/{}", rel.display()),
        Err(_) => path.display().to_string(),
    }
}

fn read_small(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_CREDENTIAL_FILE {
        if meta.is_file() {
            tracing::debug!(
                "secret redaction: {} is over {MAX_CREDENTIAL_FILE} bytes; not read",
                path.display()
            );
        }
        return None;
    }
    std::fs::read_to_string(path).ok()
}

fn secrets_in(text: &str, format: Format) -> Vec<String> {
    match format {
        Format::AwsCredentials => aws_credentials(text),
        Format::Netrc => netrc(text),
        Format::Pgpass => pgpass(text),
        Format::GitCredentials => text.lines().flat_map(|l| url_parts(l.trim())).collect(),
        Format::DockerConfig => docker_config(text),
        Format::KubeConfig => kube_config(text),
    }
}

/// `aws_secret_access_key = ...` and `aws_session_token = ...` in any profile.
fn aws_credentials(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| {
            let k = k.trim().to_ascii_lowercase();
            k == "aws_secret_access_key" || k == "aws_session_token"
        })
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// The word after each `password` token (netrc is whitespace-separated, lines do not matter).
fn netrc(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "password")
        .map(|w| w[1].trim_matches('"').to_string())
        .collect()
}

/// `host:port:database:user:password`, with `\:` and `\\` escapes.
fn pgpass(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => field.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        if fields.len() == 4 {
            out.push(field);
        }
    }
    out
}

/// Every `auth` (base64 `user:password`, and the password decoded), `identitytoken` and
/// `registrytoken` value.
fn docker_config(text: &str) -> Vec<String> {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk_json(&json, &mut |key, value| {
        let key = key.to_ascii_lowercase();
        if key == "auth" {
            out.push(value.to_string());
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value)
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            if let Some((_, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
                out.push(password.to_string());
            }
        } else if matches!(key.as_str(), "identitytoken" | "registrytoken" | "password") {
            out.push(value.to_string());
        }
    });
    out
}

fn walk_json(v: &serde_json::Value, f: &mut dyn FnMut(&str, &str)) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if let serde_json::Value::String(s) = v {
                    f(k, s);
                } else {
                    walk_json(v, f);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| walk_json(i, f)),
        _ => {}
    }
}

/// Keys of a kubeconfig whose values are credentials.
const KUBE_SECRET_KEYS: &[&str] = &[
    "token",
    "client-key-data",
    "password",
    "id-token",
    "refresh-token",
    "client-secret",
    "access-token",
];

/// The credential values of a kubeconfig (users' tokens, keys, passwords, auth-provider tokens).
fn kube_config(text: &str) -> Vec<String> {
    let Ok(yaml) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk_yaml(&yaml, &mut out);
    out
}

fn walk_yaml(v: &serde_yaml_ng::Value, out: &mut Vec<String>) {
    match v {
        serde_yaml_ng::Value::Mapping(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_str()) {
                    (Some(k), Some(s)) if KUBE_SECRET_KEYS.contains(&k) => out.push(s.to_string()),
                    _ => walk_yaml(v, out),
                }
            }
        }
        serde_yaml_ng::Value::Sequence(items) => items.iter().for_each(|i| walk_yaml(i, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_yields_only_its_secrets() {
        let aws = "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n\
                   aws_secret_access_key = wJalrXUtnFEMI/K7MDENG\nAWS_Session_Token=FwoGZXIvYXdzE\n";
        assert_eq!(
            aws_credentials(aws),
            ["wJalrXUtnFEMI/K7MDENG", "FwoGZXIvYXdzE"]
        );
        assert_eq!(
            netrc("machine api.example.com\n  login bob\n  password hunter2hunter2\n"),
            ["hunter2hunter2"]
        );
        assert_eq!(
            pgpass("# comment\ndb.internal:5432:*:app:pa\\:ss\\\\word9\n"),
            ["pa:ss\\word9"]
        );
        let git = secrets_in(
            "https://bob:ghp_abcdefgh12345678@github.com\n",
            Format::GitCredentials,
        );
        assert!(git.contains(&"ghp_abcdefgh12345678".to_string()), "{git:?}");
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:dockerpass123");
        let docker = format!(r#"{{"auths": {{"registry.example.com": {{"auth": "{auth}"}}}}}}"#);
        assert_eq!(docker_config(&docker), [auth, "dockerpass123".to_string()]);
        let kube = "users:\n- name: u\n  user:\n    token: kubetoken12345\n    client-key-data: LS0tLS1CRUdJTg==\n";
        assert_eq!(kube_config(kube), ["kubetoken12345", "LS0tLS1CRUdJTg=="]);
        assert!(kube_config(": not yaml : [").is_empty());
    }

    #[test]
    fn files_are_read_from_home_and_masked_by_name() {
        let home = tempfile::tempdir().expect("temp home");
        std::fs::create_dir_all(home.path().join(".aws")).expect("mkdir");
        std::fs::write(
            home.path().join(".aws/credentials"),
            "[default]\naws_secret_access_key = fakeSecretKey0123456789\n",
        )
        .expect("write");
        let mut b = SecretSetBuilder::new();
        collect(home.path(), &|_| None, &mut b);
        let set = b.build();
        let (text, n) = set.mask("key: fakeSecretKey0123456789.");
        assert_eq!(n, 1);
        assert_eq!(text, "key: [REDACTED:~/.aws/credentials].");
    }

    #[test]
    fn oversized_files_are_skipped() {
        let home = tempfile::tempdir().expect("temp home");
        let big = format!(
            "password {}\n",
            "x".repeat(usize::try_from(MAX_CREDENTIAL_FILE).unwrap_or(65536))
        );
        std::fs::write(home.path().join(".netrc"), big).expect("write");
        let mut b = SecretSetBuilder::new();
        collect(home.path(), &|_| None, &mut b);
        assert!(b.build().is_empty());
    }
}
