//! Failing closed where the sandbox cannot bound a command's effects (issue 10, point 3): the
//! guard knows what the sandbox enforces ([`Enforcement`]), asks for a program the policy does
//! not know unless every layer is enforced, asks for code loaded from a file written earlier on
//! the same line ([`super::sequence::staged_code`]), and judges the options of everyday tools
//! that run a program or write a file ([`super::options`]). Everything here is compiled once
//! with the policy; a decision only looks things up.

use super::decision::{Decision, Reason, Verdict};
use std::sync::{Arc, OnceLock};

use super::enforcement::Enforcement;
use super::known::KnownPrograms;
use super::options::{Effect, ProgramOptions};
use super::policy::{PolicyError, PolicyFile, RuleSpec};
use super::rule::Rule;
use super::{Guard, shell};

/// The rule id of a program the policy does not know, run where the sandbox cannot bound it.
pub const UNKNOWN_PROGRAM: &str = "unknown-program";

/// What the guard compiles from the policy to judge what the sandbox cannot bound.
#[derive(Debug, Clone, Default)]
pub struct Bounds {
    /// What the sandbox enforces for the children judged; nothing until the app says so.
    pub(super) enforcement: Enforced,
    pub(super) known: KnownPrograms,
    pub(super) loaders: Vec<Rule>,
    pub(super) writers: Vec<Rule>,
    pub(super) options: ProgramOptions,
}

impl Bounds {
    pub fn compile(
        file: &PolicyFile,
        source: &str,
        check_syntax: bool,
    ) -> Result<Bounds, PolicyError> {
        let err = |rule: &str, field: String, message: String| PolicyError::Rule {
            file: source.to_string(),
            rule: rule.to_string(),
            field,
            message,
        };
        let rules = |specs: &[RuleSpec], kind: &str| -> Result<Vec<Rule>, PolicyError> {
            let mut seen = std::collections::BTreeSet::new();
            specs
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    if !seen.insert(s.id.as_str()) {
                        return Err(err(&s.id, format!("{kind}[{i}].id"), "duplicate id".into()));
                    }
                    Rule::compile(&s.id, &s.description, 0, &s.matcher, check_syntax)
                        .map_err(|e| err(&s.id, format!("{kind}[{i}].{}", e.field), e.message))
                })
                .collect()
        };
        let loaders = rules(&file.code_loaders, "code_loaders")?;
        let writers = rules(&file.file_writers, "file_writers")?;
        let options = ProgramOptions::compile(&file.program_options)
            .map_err(|(field, m)| err("-", field, m))?;
        let known = KnownPrograms::compile(file).map_err(|(field, m)| err("-", field, m))?;
        Ok(Bounds {
            enforcement: Enforced::Fixed(Enforcement::NONE),
            known,
            loaders,
            writers,
            options,
        })
    }
}

/// What the guard judges with: given, or probed once on first use.
#[derive(Clone)]
pub enum Enforced {
    Fixed(Enforcement),
    Probed(
        Arc<OnceLock<Enforcement>>,
        Arc<dyn Fn() -> Enforcement + Send + Sync>,
    ),
}

impl Default for Enforced {
    /// Nothing enforced: the strictest assumption.
    fn default() -> Self {
        Enforced::Fixed(Enforcement::NONE)
    }
}

impl std::fmt::Debug for Enforced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Enforced::Fixed(e) => write!(f, "Fixed({e:?})"),
            Enforced::Probed(found, _) => write!(f, "Probed({:?})", found.get()),
        }
    }
}

impl Guard {
    /// The same policy, judging as if the sandbox enforced `enforcement` for every `bash`
    /// child. A guard starts assuming nothing is enforced, the strictest case.
    pub fn with_enforcement(mut self, enforcement: Enforcement) -> Guard {
        self.bounds.enforcement = Enforced::Fixed(enforcement);
        self
    }

    /// The same policy, judging with what `probe` returns, asked once, when the first command
    /// is judged: the sandbox's probes (a child process) then stay off the path to a server's
    /// first answer, and a decision never uses a guess.
    pub fn with_enforcement_from(
        mut self,
        probe: impl Fn() -> Enforcement + Send + Sync + 'static,
    ) -> Guard {
        self.bounds.enforcement = Enforced::Probed(Arc::new(OnceLock::new()), Arc::new(probe));
        self
    }

    /// What the guard assumes the sandbox enforces.
    pub fn enforcement(&self) -> Enforcement {
        match &self.bounds.enforcement {
            Enforced::Fixed(e) => *e,
            Enforced::Probed(found, probe) => *found.get_or_init(|| probe()),
        }
    }

    /// The program-options table, for the shell walker.
    pub(super) fn program_options(&self) -> &ProgramOptions {
        &self.bounds.options
    }

    /// Code loaded after a write on the same line (see [`super::sequence::staged_code`]).
    pub(super) fn judge_staged(
        &self,
        commands: &[shell::Command],
        shapes: &[super::argv::Shape],
        paths: &super::PathContext,
    ) -> Verdict {
        super::sequence::staged_code(
            commands,
            shapes,
            &self.bounds.loaders,
            &self.bounds.writers,
            paths,
            &self.source,
        )
    }

    /// One command's unknown program and listed options, under `enforcement`.
    pub(super) fn judge_bounds(
        &self,
        cmd: &shell::Command,
        functions: &[String],
        enforcement: Enforcement,
    ) -> Verdict {
        let mut v = Verdict::allow();
        if let Some(program) = cmd.argv.first()
            && !program.dynamic
            && !enforcement.is_full()
            && !cmd.via.iter().any(|v| v == shell::ARITHMETIC)
            && !self.bounds.known.knows(program, functions)
        {
            v = v.merge(Verdict::single(
                Decision::Ask,
                UNKNOWN_PROGRAM,
                format!(
                    "`{}` is a program the policy does not know (not in its rules, `known_programs` or `observe_commands`), and the sandbox does not bound {} for it: it could run a shell, read secrets or send them out. With every layer enforced it would be allowed; an operator can list it in `known_programs`",
                    program.text,
                    enforcement.missing_in_words()
                ),
            ));
        }
        for u in &cmd.option_uses {
            let Some(spec) = self.file.program_options.get(u.entry) else {
                continue;
            };
            let (decision, what) = match u.effect {
                Effect::Runs if self.bounds.options.is_plain(u) => (
                    Decision::Allow,
                    format!("runs `{}`, judged as a command", u.value.text),
                ),
                Effect::Runs => (
                    Decision::Ask,
                    format!(
                        "runs `{}` as a command (judged as one, and never allowed without a human)",
                        u.value.text
                    ),
                ),
                Effect::Writes => (
                    Decision::Allow,
                    format!("writes `{}`, judged as a written file", u.value.text),
                ),
                Effect::Interprets => (
                    Decision::Ask,
                    format!(
                        "follows instructions in `{}` that the guard cannot read",
                        u.value.text
                    ),
                ),
            };
            v = v.merge(Verdict {
                decision,
                risk: 0,
                reasons: vec![Reason {
                    rule: spec.id.clone(),
                    decision,
                    risk: 0,
                    message: format!(
                        "{}: `{} {}` {what}",
                        spec.description,
                        cmd.program(),
                        u.option
                    ),
                    source: Some(self.source.clone()),
                }],
                commands: Vec::new(),
            });
        }
        v
    }

    /// Checks the examples and counter-examples of `code_loaders` and `program_options`.
    pub(super) fn check_bound_examples(&self) -> Result<(), PolicyError> {
        for (i, s) in self.file.code_loaders.iter().enumerate() {
            self.check_rule_examples("code_loaders", i, &s.id, &s.examples, &s.counter_examples)?;
        }
        for (i, s) in self.file.program_options.iter().enumerate() {
            let (ex, counter) = (&s.examples, &s.counter_examples);
            self.check_rule_examples("program_options", i, &s.id, ex, counter)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
