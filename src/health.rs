//! What a part of pi-mcp says about its own health: one [`Check`] per thing an operator can get
//! right or wrong (a channel's variables, a database, the Landlock layer), with what to do when
//! it is not right. Each part (guard, sandbox, store, tools, monitor, prompts) writes its own
//! checks next to the code it checks; `pi-mcp doctor` only asks them and prints the answers,
//! so a check cannot drift from what the part really does.

use serde::Serialize;

/// How a check came out, ordered so that the worst of several is their `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Works, or is not needed.
    Ok,
    /// Works with a weakness, or is missing where it may be wanted.
    Warn,
    /// Does not work, or is needed and missing: `doctor` exits non-zero.
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One health check's answer. `detail` and `fix` never hold a secret: URLs are shown without
/// passwords or webhook tokens, credentials by their source only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, short (`landlock`, `channel webhook`, `database default`).
    pub name: String,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it (for `warn` and `fail`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name: name.into(),
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name: name.into(),
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// The same check, failing instead of warning when `needed` (something depends on it).
    pub fn needed_if(mut self, needed: bool) -> Check {
        if needed && self.status == Status::Warn {
            self.status = Status::Fail;
        }
        self
    }
}

/// `rule a` or `rules a, b`: the alert rules a check names as depending on it.
pub fn rules_list(ids: &[String]) -> String {
    match ids {
        [one] => format!("rule {one}"),
        many => format!("rules {}", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_status_is_the_max() {
        let all = [Status::Warn, Status::Ok, Status::Fail];
        assert_eq!(all.into_iter().max(), Some(Status::Fail));
        assert_eq!(Status::Ok.max(Status::Warn), Status::Warn);
        let c = Check::warn("x", "missing", "add it").needed_if(true);
        assert_eq!(c.status, Status::Fail);
        assert_eq!(Check::ok("x", "fine").needed_if(true).status, Status::Ok);
    }
}
