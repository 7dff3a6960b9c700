//! One policy rule: what it matches in a command (program, subcommands, flags, arguments,
//! paths outside the workspace, written files, pipes) and how it is compiled and evaluated.
//! A criterion that depends on a value computed at run time matches as [`Hit::Maybe`].

use globset::{Glob, GlobBuilder};

use super::lazy::{LazyGlob, LazyRegex};

/// A glob, or a plain string when it has no glob characters (most are: program names), which
/// matches by equality and costs no compiled automaton.
#[derive(Debug, Clone)]
enum Pattern {
    Literal(String),
    Glob(LazyGlob),
}

impl Pattern {
    fn is_match(&self, s: &str) -> bool {
        match self {
            Pattern::Literal(l) => l == s,
            Pattern::Glob(g) => g.is_match(s),
        }
    }
}
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::argv::{Shape, write_targets};
use super::paths::PathContext;
use super::shell::Command;
use super::words::Word;

/// Match criteria; all given criteria must hold. Globs use `*`, `?`, `[...]`, `**`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Program basenames (globs), e.g. `["rm"]`, `["mkfs*"]`. Empty: any program.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub program: Vec<String>,
    /// Positional words that must appear in this order (not necessarily adjacent), e.g.
    /// `["rds", "delete-db-*"]` for `aws --region x rds delete-db-instance`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subcommands: Vec<String>,
    /// Normalised flags that must all be present (see `flag_aliases`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags_all: Vec<String>,
    /// Normalised flags of which at least one must be present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags_any: Vec<String>,
    /// Normalised flags none of which may be present (`bash FILE` loads a file, `bash -c` not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags_none: Vec<String>,
    /// Globs of which at least one argument word must match (as written, quotes removed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args_any: Vec<String>,
    /// A regex that the arguments joined by spaces must match, e.g. `(?i)drop\s+database`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_regex: Option<String>,
    /// Some positional argument, read as a path, is the workspace root itself or outside it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outside_workspace: bool,
    /// Some written file (see `writes_to`) is outside every workspace root, and not one of
    /// `writes_except`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub writes_outside_workspace: bool,
    /// Globs of which some written file (redirection, tee, dd of=, ...) must match, on its
    /// absolute path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes_to: Vec<String>,
    /// Written files that do not count for `writes_to` (e.g. `/dev/null`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes_except: Vec<String>,
    /// Programs (globs) of which the previous pipeline stage must be one (`curl ... | sh`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub piped_from: Vec<String>,
}

/// How a rule matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hit {
    No,
    /// It would match for some run-time value the guard cannot see.
    Maybe,
    Yes,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub description: String,
    pub score: u32,
    program: Vec<Pattern>,
    subcommands: Vec<Pattern>,
    flags_all: Vec<String>,
    flags_any: Vec<String>,
    flags_none: Vec<String>,
    args_any: Vec<Pattern>,
    args_regex: Option<LazyRegex>,
    outside_workspace: bool,
    writes_outside_workspace: bool,
    writes_to: Vec<Pattern>,
    writes_except: Vec<Pattern>,
    piped_from: Vec<Pattern>,
}

/// A rule that does not compile: the field and why.
#[derive(Debug)]
pub struct CompileError {
    pub field: String,
    pub message: String,
}

/// A rule's patterns: plain words as literals, globs parsed now (`check_syntax`) or on first
/// use (the built-in policy, which the test suite loads with every pattern parsed).
fn globs(
    field: &str,
    patterns: &[String],
    literal_separator: bool,
    check_syntax: bool,
) -> Result<Vec<Pattern>, CompileError> {
    let build = if literal_separator {
        path_glob
    } else {
        word_glob
    };
    patterns
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if !p.contains(['*', '?', '[', '{', '\\']) {
                Ok(Pattern::Literal(p.clone()))
            } else if !check_syntax {
                Ok(Pattern::Glob(LazyGlob::deferred(p, build)))
            } else {
                build(p)
                    .map(|g| Pattern::Glob(LazyGlob::new(g)))
                    .map_err(|e| CompileError {
                        field: format!("match.{field}[{i}]"),
                        message: e.to_string(),
                    })
            }
        })
        .collect()
}

/// A rule's glob over a path (`*` stops at `/`).
fn path_glob(p: &str) -> Result<Glob, globset::Error> {
    rule_glob(p, true)
}

/// A rule's glob over a word (a program, a subcommand, an argument).
fn word_glob(p: &str) -> Result<Glob, globset::Error> {
    rule_glob(p, false)
}

/// `p` as a glob (`\\` escapes); a pattern that does not parse as one matches itself literally
/// (unless it ends in a lone `\\`).
fn rule_glob(p: &str, literal_separator: bool) -> Result<Glob, globset::Error> {
    GlobBuilder::new(p)
        .literal_separator(literal_separator)
        .backslash_escape(true)
        .build()
        .or_else(|_| Glob::new(&globset::escape(p)))
}

impl Rule {
    pub fn compile(
        id: &str,
        description: &str,
        score: u32,
        m: &Match,
        check_syntax: bool,
    ) -> Result<Rule, CompileError> {
        if m.program.is_empty()
            && m.writes_to.is_empty()
            && m.piped_from.is_empty()
            && !m.writes_outside_workspace
        {
            return Err(CompileError {
                field: "match".into(),
                message: "give at least one of `program`, `writes_to`, `writes_outside_workspace` or `piped_from`".into(),
            });
        }
        let args_regex = match &m.args_regex {
            Some(r) if !check_syntax => Some(LazyRegex::unchecked(r)),
            Some(r) => Some(LazyRegex::parse(r).map_err(|message| CompileError {
                field: "match.args_regex".into(),
                message,
            })?),
            None => None,
        };
        Ok(Rule {
            id: id.to_string(),
            description: description.to_string(),
            score,
            program: globs("program", &m.program, false, check_syntax)?,
            subcommands: globs("subcommands", &m.subcommands, false, check_syntax)?,
            flags_all: m.flags_all.clone(),
            flags_any: m.flags_any.clone(),
            flags_none: m.flags_none.clone(),
            args_any: globs("args_any", &m.args_any, false, check_syntax)?,
            args_regex,
            outside_workspace: m.outside_workspace,
            writes_outside_workspace: m.writes_outside_workspace,
            writes_to: globs("writes_to", &m.writes_to, true, check_syntax)?,
            writes_except: globs("writes_except", &m.writes_except, true, check_syntax)?,
            piped_from: globs("piped_from", &m.piped_from, false, check_syntax)?,
        })
    }

    /// Builds every matcher of the rule now (they are built on first use otherwise); the error
    /// is a regex over the compiled-size limit, which the syntax check at load cannot see.
    pub fn force(&self) -> Result<(), CompileError> {
        for p in self
            .program
            .iter()
            .chain(&self.subcommands)
            .chain(&self.args_any)
            .chain(&self.writes_to)
            .chain(&self.writes_except)
            .chain(&self.piped_from)
        {
            if let Pattern::Glob(g) = p {
                g.force();
            }
        }
        match &self.args_regex {
            Some(re) => re.force().map_err(|message| CompileError {
                field: "match.args_regex".into(),
                message,
            }),
            None => Ok(()),
        }
    }

    /// Evaluates the rule on one command. Every criterion must hold; the weakest hit wins.
    pub fn check(&self, cmd: &Command, shape: &Shape, paths: &PathContext) -> Hit {
        let mut hit = Hit::Yes;
        if !self.program.is_empty() {
            need(
                &mut hit,
                bool_hit(self.program.iter().any(|g| g.is_match(cmd.program()))),
            );
        }
        if hit == Hit::No {
            return Hit::No;
        }
        let unknown = if shape.has_dynamic {
            Hit::Maybe
        } else {
            Hit::No
        };
        if !self.subcommands.is_empty() {
            let mut it = shape.positionals.iter().filter(|w| !w.dynamic);
            let all = self
                .subcommands
                .iter()
                .all(|g| it.any(|w| g.is_match(&w.text)));
            // Subcommands come first: a dynamic word later (`git add *.rs`) cannot be one.
            let first_dynamic = shape.positionals.first().is_some_and(|w| w.dynamic);
            need(
                &mut hit,
                if all {
                    Hit::Yes
                } else if first_dynamic {
                    Hit::Maybe
                } else {
                    Hit::No
                },
            );
        }
        if !self.flags_all.is_empty() {
            let all = self.flags_all.iter().all(|f| has_flag(shape, f));
            need(&mut hit, if all { Hit::Yes } else { unknown });
        }
        if !self.flags_any.is_empty() {
            let any = self.flags_any.iter().any(|f| has_flag(shape, f));
            need(&mut hit, if any { Hit::Yes } else { unknown });
        }
        if self.flags_none.iter().any(|f| shape.flags.contains(f)) {
            return Hit::No;
        }
        if !self.args_any.is_empty() {
            let args = &cmd.argv[1..];
            // A dynamic word matches on its raw text too, so a policy can name `$HOME`.
            let named = args
                .iter()
                .any(|w| self.args_any.iter().any(|g| g.is_match(&w.text)));
            let unknown_value = args.iter().any(|w| w.dynamic && glob_stand_in(w).is_none());
            need(
                &mut hit,
                if named {
                    Hit::Yes
                } else if unknown_value {
                    Hit::Maybe
                } else {
                    Hit::No
                },
            );
        }
        if let Some(re) = &self.args_regex {
            let joined: Vec<&str> = cmd.argv[1..].iter().map(|w| w.text.as_str()).collect();
            need(
                &mut hit,
                if re.is_match(&joined.join(" ")) {
                    Hit::Yes
                } else {
                    unknown
                },
            );
        }
        if self.outside_workspace {
            let outside = shape
                .positionals
                .iter()
                .map(|w| match path_of(w) {
                    Some(p) => bool_hit(paths.outside(&p)),
                    None => Hit::Maybe,
                })
                .max()
                .unwrap_or(Hit::No);
            need(&mut hit, outside);
        }
        if self.writes_outside_workspace {
            need(
                &mut hit,
                self.written(cmd, shape, paths, |_, text| paths.outside(text)),
            );
        }
        if !self.writes_to.is_empty() {
            let listed = |abs: &str, text: &str| {
                self.writes_to
                    .iter()
                    .any(|g| g.is_match(abs) || g.is_match(text))
            };
            need(&mut hit, self.written(cmd, shape, paths, listed));
        }
        if !self.piped_from.is_empty() {
            need(
                &mut hit,
                bool_hit(
                    cmd.piped_from
                        .as_deref()
                        .is_some_and(|p| self.piped_from.iter().any(|g| g.is_match(p))),
                ),
            );
        }
        hit
    }
}

impl Rule {
    /// How some file `cmd` writes, not in `writes_except`, satisfies `test(absolute, as written)`.
    fn written(
        &self,
        cmd: &Command,
        shape: &Shape,
        paths: &PathContext,
        test: impl Fn(&str, &str) -> bool,
    ) -> Hit {
        write_targets(cmd, shape)
            .iter()
            .map(|w| {
                let Some(text) = path_of(w) else {
                    return Hit::Maybe;
                };
                let abs = paths.absolute(&text);
                let abs = abs.to_string_lossy();
                // Only the normalised path may be excepted: `/tmp/../etc/x` as written matches
                // `/tmp/**`, but it writes /etc/x.
                let excepted = self.writes_except.iter().any(|g| g.is_match(abs.as_ref()));
                bool_hit(!excepted && test(abs.as_ref(), &text))
            })
            .max()
            .unwrap_or(Hit::No)
    }
}

/// The path a word stands for: itself when literal, a stand-in for a glob, `None` when unknown.
fn path_of(w: &Word) -> Option<String> {
    if w.dynamic {
        glob_stand_in(w)
    } else {
        Some(w.text.clone())
    }
}

/// For a word that is dynamic only through glob or brace expansion (`build/*`, `*.yaml`),
/// a path standing for what it expands to: its literal prefix plus a file name. `None` for a
/// word with variables or substitutions, whose value is unknown.
fn glob_stand_in(w: &Word) -> Option<String> {
    if !w.dynamic || w.text.contains(['$', '`', '<']) {
        return None;
    }
    let t = &w.text;
    let brace = t.find('{').filter(|&i| {
        t[i..]
            .find('}')
            .is_some_and(|j| t[i..i + j].contains([',', '.']))
    });
    let end = [t.find(['*', '?', '[']), brace]
        .into_iter()
        .flatten()
        .min()?;
    Some(format!("{}x", &t[..end]))
}

/// True when the command gives `flag`, also as an abbreviation: getopt_long and git's own
/// option parser accept any unambiguous prefix of a long option (`--har` for `--hard`), so a
/// prefix of at least two letters counts (strictly: it could abbreviate the rule's flag).
fn has_flag(shape: &Shape, flag: &str) -> bool {
    shape.flags.contains(flag)
        || (flag.starts_with("--")
            && shape
                .flags
                .iter()
                .any(|g| g.len() >= 4 && g.starts_with("--") && flag.starts_with(g.as_str())))
}

fn need(hit: &mut Hit, h: Hit) {
    *hit = (*hit).min(h);
}

fn bool_hit(b: bool) -> Hit {
    if b { Hit::Yes } else { Hit::No }
}
