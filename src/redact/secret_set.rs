//! The values of the secrets pi-mcp itself holds (its channel URLs, tokens, API keys, the
//! credentials in the operator's files), collected once at start and searched for in every tool
//! result with one Aho-Corasick pass, so that a secret that surfaces in output (a file the agent
//! wrote it into, a log line, an error message) never reaches the model, whatever its shape.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Values shorter than this are not collected: short strings (`admin`, `postgres`, `1234`)
/// occur in ordinary output far too often, and masking them would mangle it without hiding
/// anything worth hiding.
pub const MIN_SECRET_LEN: usize = 8;

/// Collects secret values with the name of where each came from (a variable, a file).
#[derive(Default)]
pub struct SecretSetBuilder {
    values: Vec<(String, String)>,
}

impl SecretSetBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value` from `source`; for a URL also its password and, for web URLs, its path and
    /// query values (a webhook's token), each on its own.
    pub fn add(&mut self, source: &str, value: &str) {
        self.add_exact(source, value);
        for part in url_parts(value.trim()) {
            self.add_exact(source, &part);
        }
    }

    /// Adds `value` from `source` as it is (trimmed), when it is long enough to be searched for.
    pub fn add_exact(&mut self, source: &str, value: &str) {
        let value = value.trim();
        if value.len() >= MIN_SECRET_LEN && !self.values.iter().any(|(v, _)| v == value) {
            self.values.push((value.to_string(), source.to_string()));
        }
    }

    pub fn build(self) -> SecretSet {
        let (values, sources): (Vec<String>, Vec<String>) = self.values.into_iter().unzip();
        let build = |kind| {
            if values.is_empty() {
                return None;
            }
            AhoCorasickBuilder::new()
                .match_kind(kind)
                .build(&values)
                .map_err(|e| tracing::warn!("secret redaction: cannot index the secrets: {e}"))
                .ok()
        };
        SecretSet {
            find: build(MatchKind::LeftmostLongest),
            overlapping: build(MatchKind::Standard),
            sources,
        }
    }
}

/// The secrets to mask, indexed for one linear pass.
pub struct SecretSet {
    /// Whether any value occurs: leftmost semantics keep the search on the SIMD prefilter
    /// (about twenty times faster than the overlapping search on text without secrets).
    find: Option<AhoCorasick>,
    /// Every occurrence, overlapping ones included, once [`SecretSet::find`] found one.
    overlapping: Option<AhoCorasick>,
    /// Where each value came from, by pattern id (shown in the mask, never the value).
    sources: Vec<String>,
}

impl std::fmt::Debug for SecretSet {
    // Never the values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretSet({} values)", self.len())
    }
}

impl SecretSet {
    /// A set with no values (shapes are still masked by the redactor).
    pub fn empty() -> Self {
        SecretSetBuilder::new().build()
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The names of the sources it holds values from (deduplicated, for the start-up log).
    pub fn sources(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.sources {
            if !out.contains(&s.as_str()) {
                out.push(s);
            }
        }
        out
    }

    /// Masks every occurrence of every value in `text` as `[REDACTED:<source>]`. Matches that
    /// overlap or touch (a URL and its own password, two secrets sharing characters) merge into
    /// one masked region, so no part of either shows; each region counts once.
    pub fn mask<'a>(&self, text: &'a str) -> (Cow<'a, str>, usize) {
        let (Some(find), Some(ac)) = (&self.find, &self.overlapping) else {
            return (Cow::Borrowed(text), 0);
        };
        if !find.is_match(text) {
            return (Cow::Borrowed(text), 0);
        }
        let mut spans: Vec<(usize, usize, usize)> = ac
            .find_overlapping_iter(text)
            .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
            .collect();
        if spans.is_empty() {
            return (Cow::Borrowed(text), 0);
        }
        spans.sort_unstable();
        // (start, end, source index or None when several sources merged)
        let mut regions: Vec<(usize, usize, Option<usize>)> = Vec::new();
        for (start, end, id) in spans {
            match regions.last_mut() {
                Some(last) if start <= last.1 => {
                    last.1 = last.1.max(end);
                    if last.2.is_some_and(|s| self.sources[s] != self.sources[id]) {
                        last.2 = None;
                    }
                }
                _ => regions.push((start, end, Some(id))),
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for &(start, end, source) in &regions {
            out.push_str(&text[at..start]);
            match source {
                Some(s) => {
                    out.push_str("[REDACTED:");
                    out.push_str(&self.sources[s]);
                    out.push(']');
                }
                None => out.push_str("[REDACTED]"),
            }
            at = end;
        }
        out.push_str(&text[at..]);
        (Cow::Owned(out), regions.len())
    }
}

/// The parts of a URL that are secrets on their own: the password (as written and
/// percent-decoded) and, for `http(s)` URLs (webhooks), the path, its last segment when it looks
/// random, and the query values, which is where their tokens live (`https://hooks.slack.com/services/T../B../XXXX`). Database and
/// SMTP paths and queries (`/orders`, `?sslmode=require`) are not secrets and are left out.
pub fn url_parts(value: &str) -> Vec<String> {
    let Some((scheme, rest)) = value.split_once("://") else {
        return Vec::new();
    };
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    {
        return Vec::new();
    }
    let mut parts = Vec::new();
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if let Some((userinfo, _host)) = authority.rsplit_once('@')
        && let Some((_user, password)) = userinfo.split_once(':')
    {
        parts.push(password.to_string());
        // A password in a URL is percent-encoded; output may show it decoded.
        let decoded = percent_encoding::percent_decode_str(password)
            .decode_utf8_lossy()
            .into_owned();
        if decoded != password {
            parts.push(decoded);
        }
    }
    let web = matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https");
    if web {
        let tail = &rest[authority_end..];
        let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
        let path = tail[..path_end].trim_start_matches('/');
        parts.push(path.to_string());
        // The token segment alone (`XXXX` of `/services/T../B../XXXX`), when it looks like one:
        // `/v1/notifications` must not make every "notifications" a secret.
        if let Some(last) = path
            .rsplit('/')
            .next()
            .filter(|l| super::shapes::looks_random(l))
        {
            parts.push(last.to_string());
        }
        if let Some(query) = tail[path_end..].strip_prefix('?') {
            let query = query.split('#').next().unwrap_or("");
            for pair in query.split('&') {
                if let Some((_, v)) = pair.split_once('=') {
                    parts.push(v.to_string());
                }
            }
        }
    }
    parts
}
