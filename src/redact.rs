//! Removes secrets from what leaves pi-mcp: tool results before they reach the model (every
//! face: MCP over stdio or HTTP, the agent, which talks MCP to the same server), the audit log and
//! messages. Two kinds of secret are masked:
//! - the values pi-mcp knows ([`secret_set`]): its own secret variables, the policy's `env_deny`
//!   variables and the credentials in the operator's files ([`credential_files`]), collected
//!   once at start;
//! - well-known shapes ([`shapes`]): private-key blocks, JWTs, vendor keys, bearer tokens,
//!   credentials in URLs, `password=` / `token:` values.
//!
//! The free functions [`text`] and [`json`] are the strict, value-blind form used for audit
//! arguments and messages; a [`Redactor`] adds the known values and counts what it masks, for
//! tool results.

pub mod credential_files;
pub mod secret_set;
pub mod shapes;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

pub use secret_set::{MIN_SECRET_LEN, SecretSet, SecretSetBuilder};
use shapes::Mode;

const MASK: &str = "[REDACTED]";

static SECRET_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(password|passwd|secret|token|api[_-]?key|authorization|credential|private[_-]?key|access[_-]?key)")
        .expect("static regex")
});

/// Redacts secrets inside free text (a command line, an error message): every secret shape,
/// whether or not its value looks like a secret.
pub fn text(s: &str) -> String {
    shapes::mask(s, Mode::Strict).0.into_owned()
}

/// Redacts secrets inside tool arguments: secret-named keys lose their values, strings are
/// scanned for secrets. In place: only what changes is rebuilt.
pub fn json(mut v: Value) -> Value {
    mask_json(&mut v);
    v
}

fn mask_json(v: &mut Value) {
    match v {
        Value::Object(map) => map.iter_mut().for_each(|(k, v)| {
            if SECRET_KEY.is_match(k) && !v.is_null() {
                *v = Value::String(MASK.into());
            } else {
                mask_json(v);
            }
        }),
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        Value::String(s) => {
            if let (Cow::Owned(masked), _) = shapes::mask(s, Mode::Strict) {
                *s = masked;
            }
        }
        _ => {}
    }
}

/// Masks secrets in tool results and counts them: the values pi-mcp knows (one Aho-Corasick
/// pass), then the shapes (only those whose literal trigger occurs). Built once at start; cheap
/// to share.
#[derive(Debug)]
pub struct Redactor {
    secrets: SecretSet,
}

impl Redactor {
    pub fn new(secrets: SecretSet) -> Self {
        Redactor { secrets }
    }

    /// A redactor for this process: the values of its environment variables that are pi-mcp's
    /// own secrets or well-known credentials ([`crate::secrets::is_redacted_var`]) or that the
    /// policy denies to `bash` (`denied`), plus the credentials in the files under `home`.
    pub fn from_environment(denied: &dyn Fn(&str) -> bool, home: &Path) -> Self {
        let vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self::from_vars(&vars, denied, home)
    }

    /// [`Redactor::from_environment`] over the given variables.
    pub fn from_vars(
        vars: &[(String, String)],
        denied: &dyn Fn(&str) -> bool,
        home: &Path,
    ) -> Self {
        let mut set = SecretSetBuilder::new();
        for (name, value) in vars {
            if crate::secrets::is_redacted_var(name) || denied(name) {
                set.add(name, value);
            }
        }
        let env = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        credential_files::collect(home, &env, &mut set);
        let secrets = set.build();
        tracing::debug!(
            "secret redaction: {} values from {}",
            secrets.len(),
            secrets.sources().join(", ")
        );
        Redactor { secrets }
    }

    /// The known values.
    pub fn secrets(&self) -> &SecretSet {
        &self.secrets
    }

    /// `s` with every secret masked (borrowed when there was none), and how many were masked.
    pub fn text<'a>(&self, s: &'a str) -> (Cow<'a, str>, usize) {
        let (known, n_known) = self.secrets.mask(s);
        match known {
            Cow::Borrowed(b) => {
                let (out, n) = shapes::mask(b, Mode::Output);
                (out, n_known + n)
            }
            Cow::Owned(owned) => {
                let (out, n) = shapes::mask(&owned, Mode::Output);
                let replaced = match out {
                    Cow::Owned(x) => Some(x),
                    Cow::Borrowed(_) => None,
                };
                (Cow::Owned(replaced.unwrap_or(owned)), n_known + n)
            }
        }
    }

    /// Masks in place every string of `v` as [`Redactor::text`] does, and the string value of a
    /// secret-named key (`"password": "hunter2"`) when it looks like a secret; returns the count.
    pub fn json(&self, v: &mut Value) -> usize {
        match v {
            Value::Object(map) => map
                .iter_mut()
                .map(|(k, v)| match v {
                    Value::String(s)
                        if SECRET_KEY.is_match(k)
                            && !shapes::pagination_key(k)
                            && shapes::assigned_secret(s) =>
                    {
                        *s = MASK.to_string();
                        1
                    }
                    other => self.json(other),
                })
                .sum(),
            Value::Array(items) => items.iter_mut().map(|i| self.json(i)).sum(),
            Value::String(s) => {
                let (out, n) = self.text(s);
                if n > 0 {
                    *s = out.into_owned();
                }
                n
            }
            _ => 0,
        }
    }

    /// `s` with the known values masked (the audit log applies this to every entry, on top of
    /// the strict [`text`] its writers apply).
    pub fn known_text(&self, s: &str) -> String {
        self.secrets.mask(s).0.into_owned()
    }

    /// Masks the known values in every string of `v`, in place.
    pub fn known_json(&self, v: &mut Value) {
        match v {
            Value::Object(map) => map.values_mut().for_each(|v| self.known_json(v)),
            Value::Array(items) => items.iter_mut().for_each(|v| self.known_json(v)),
            Value::String(s) => {
                if let (Cow::Owned(masked), _) = self.secrets.mask(s) {
                    *s = masked;
                }
            }
            _ => {}
        }
    }
}

/// The line a tool result carries when something was masked: `[2 secrets redacted]`.
pub fn count_line(n: usize) -> String {
    if n == 1 {
        "[1 secret redacted]".to_string()
    } else {
        format!("[{n} secrets redacted]")
    }
}
