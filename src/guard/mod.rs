//! The gatekeeper: every tool call is judged here before anything runs. It parses shell
//! commands into what bash would execute, applies the policy's block and risk rules, confines
//! paths to the workspace, and says `allow`, `ask` or `deny` with the reasons.

pub mod argv;
pub mod cloudwatch;
pub mod decision;
pub mod egress;
pub mod expand;
pub mod health;
pub mod hidden;
pub mod installs;
pub mod links;
pub mod notify;
pub mod observe;
pub mod osv;
pub mod parsed;
mod path_prefilter;
pub mod paths;
pub mod policy;
pub mod rego;
pub mod rule;
pub mod screen;
pub mod sequence;
pub mod shell;
pub mod sql;
pub mod versions;
pub mod words;
pub mod wrappers;

// Failing closed where the sandbox cannot bound (what it enforces, unknown programs, code
// staged for a loader, options that run or write).
pub mod bounds;
pub mod enforcement;
pub mod known;
pub mod lazy;
pub mod options;

use std::path::{Path, PathBuf};

use globset::Glob;

pub use decision::{Decision, Reason, Verdict};
pub use enforcement::Enforcement;
pub use parsed::ParsedPolicy;
pub use paths::{PathContext, PathError, Protected, Workspace};
pub use policy::{PolicyError, PolicyFile, Timeouts};

use rule::{Hit, Rule};

/// How the compiled-in policy is named in messages.
pub const DEFAULT_SOURCE: &str = "built-in default policy";

/// A loaded, compiled and self-tested policy.
#[derive(Debug, Clone)]
pub struct Guard {
    file: PolicyFile,
    source: String,
    block: Vec<Rule>,
    risk: Vec<Rule>,
    protected: Protected,
    env_deny: lazy::LazyGlobSet,
    /// Where package installs are checked for known vulnerabilities; `None`: nowhere.
    osv: Option<std::sync::Arc<dyn osv::Advisories>>,
    /// Rego files the policy names, evaluated after the JSON rules.
    rego: Option<std::sync::Arc<rego::RegoPolicies>>,
    /// The `notify` allow-lists.
    notify: notify::NotifyRules,
    /// What no `bash` child may read.
    hidden: hidden::HiddenPatterns,
    /// What the `cloudwatch` tool may read.
    cloudwatch: cloudwatch::CloudWatchScope,
    /// What the sandbox enforces, and what the guard judges more strictly without it.
    bounds: bounds::Bounds,
}

impl Guard {
    /// Loads the policy at `path`, or the built-in default when `None` (see
    /// [`ParsedPolicy::compile`] for what is checked).
    pub fn load(path: Option<&Path>) -> Result<Guard, PolicyError> {
        ParsedPolicy::read(path)?.compile(false)
    }

    /// Loads like [`Guard::load`] but always checks every rule's examples.
    pub fn load_checked(path: Option<&Path>) -> Result<Guard, PolicyError> {
        ParsedPolicy::read(path)?.compile(true)
    }

    /// Compiles a parsed policy and checks every rule's examples and counter-examples.
    pub fn new(file: PolicyFile, source: &str) -> Result<Guard, PolicyError> {
        let guard = Guard::compile(ParsedPolicy::of(file, source, None)?, true)?;
        guard.check_examples()?;
        Ok(guard)
    }

    /// Compiles a parsed policy without running its examples; `check_syntax`: parse each
    /// `args_regex` and each rule's glob now (patterns are compiled on first use, see [`lazy`]).
    fn compile(parsed: ParsedPolicy, check_syntax: bool) -> Result<Guard, PolicyError> {
        let ParsedPolicy {
            file,
            source,
            hidden,
            also_protected,
            ..
        } = parsed;
        let source = source.as_str();
        let rule_err = |rule: &str, field: String, message: String| PolicyError::Rule {
            file: source.to_string(),
            rule: rule.to_string(),
            field,
            message,
        };
        let mut seen = std::collections::BTreeSet::new();
        let mut compile = |specs: &[policy::RuleSpec],
                           kind: &str|
         -> Result<Vec<Rule>, PolicyError> {
            specs
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    if !seen.insert(s.id.clone()) {
                        return Err(rule_err(
                            &s.id,
                            format!("{kind}[{i}].id"),
                            "duplicate rule id".into(),
                        ));
                    }
                    let score = match (kind, s.score) {
                        ("risk", None) => {
                            return Err(rule_err(
                                &s.id,
                                format!("{kind}[{i}].score"),
                                "a risk rule needs a score (0-100)".into(),
                            ));
                        }
                        (_, Some(x)) if x > 100 => {
                            return Err(rule_err(
                                &s.id,
                                format!("{kind}[{i}].score"),
                                "score must be 0-100".into(),
                            ));
                        }
                        (_, x) => x.unwrap_or(100),
                    };
                    Rule::compile(&s.id, &s.description, score, &s.matcher, check_syntax)
                        .map_err(|e| rule_err(&s.id, format!("{kind}[{i}].{}", e.field), e.message))
                })
                .collect()
        };
        let block = compile(&file.block, "block")?;
        let risk = compile(&file.risk, "risk")?;
        if file.ask_at > file.deny_at || file.deny_at > 100 {
            return Err(rule_err(
                "-",
                "ask_at".into(),
                "need ask_at <= deny_at <= 100".into(),
            ));
        }
        if file.task_after_secs == 0 {
            return Err(rule_err(
                "-",
                "task_after_secs".into(),
                "must be at least 1 (seconds): a bash or sql call whose timeout is above it runs as an \
                 MCP task; to keep calls out of tasks, set it to the largest timeout you allow (timeouts.max_secs)"
                    .into(),
            ));
        }
        file.sql.validate(source)?;
        let mut protected = file.protected_paths.clone();
        protected.extend(also_protected);
        let protected =
            Protected::new(&protected).map_err(|(i, m)| match file.protected_paths.get(i) {
                Some(_) => rule_err("-", format!("protected_paths[{i}]"), m),
                None => rule_err(
                    "-",
                    format!(
                        "protected path {}",
                        protected.get(i).map_or("?", String::as_str)
                    ),
                    m,
                ),
            })?;
        let mut env = Vec::new();
        for (i, p) in file.env_deny.iter().enumerate() {
            env.push(
                Glob::new(p).map_err(|e| rule_err("-", format!("env_deny[{i}]"), e.to_string()))?,
            );
        }
        let env_deny = lazy::LazyGlobSet::deny_list(env);
        let notify = notify::NotifyRules::compile(&file.notify, source)?;
        let cloudwatch = cloudwatch::CloudWatchScope::compile(&file.cloudwatch, source)?;
        let guard = Guard {
            hidden,
            notify,
            file,
            source: source.to_string(),
            block,
            risk,
            protected,
            env_deny,
            osv: None,
            rego: None,
            cloudwatch,
            bounds: bounds::Bounds::default(),
        };
        let bounds = bounds::Bounds::compile(&guard.file, source, check_syntax)?;
        Ok(Guard { bounds, ..guard })
    }

    /// The same policy, checking package installs against `advisories` (see
    /// [`installs::judge_installs`]); `None` makes every install need approval.
    pub fn with_osv(mut self, advisories: Option<std::sync::Arc<dyn osv::Advisories>>) -> Guard {
        self.osv = advisories;
        self
    }

    /// Where package installs are checked, if anywhere.
    pub fn osv(&self) -> Option<&dyn osv::Advisories> {
        self.osv.as_deref()
    }

    /// Where the policy came from (a path or "built-in default policy").
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn file(&self) -> &PolicyFile {
        &self.file
    }

    /// The paths no `bash` child may read (the sandbox covers them).
    pub fn hidden(&self) -> &hidden::HiddenPatterns {
        &self.hidden
    }

    pub fn protected(&self) -> &Protected {
        &self.protected
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.file.timeouts
    }

    /// True when the environment variable must not reach a `bash` child.
    pub fn env_denied(&self, name: &str) -> bool {
        self.env_deny.is_match(name)
    }

    /// The context rule examples are judged in: workspace `/workspace`, home `/home/agent`.
    pub fn example_context() -> PathContext {
        PathContext {
            cwd: PathBuf::from("/workspace"),
            roots: vec![PathBuf::from("/workspace")],
            home: PathBuf::from("/home/agent"),
        }
    }

    fn check_examples(&self) -> Result<(), PolicyError> {
        for (kind, specs) in [("block", &self.file.block), ("risk", &self.file.risk)] {
            for (i, s) in specs.iter().enumerate() {
                self.check_rule_examples(kind, i, &s.id, &s.examples, &s.counter_examples)?;
            }
        }
        self.check_bound_examples()
    }

    /// Rule `id` (the `i`th of `kind`) must take part in the verdict on each example and in
    /// none on its counter-examples, judged in [`Guard::example_context`] with every sandbox
    /// layer enforced (so that an example holds whatever the machine enforces).
    fn check_rule_examples(
        &self,
        kind: &str,
        i: usize,
        id: &str,
        examples: &[String],
        counter_examples: &[String],
    ) -> Result<(), PolicyError> {
        let ctx = Guard::example_context();
        let error = |field: String, message: String| PolicyError::Rule {
            file: self.source.clone(),
            rule: id.to_string(),
            field,
            message,
        };
        for (j, ex) in examples.iter().enumerate() {
            let v = self.judge_under(ex, &ctx, Enforcement::FULL);
            if !v.reasons.iter().any(|r| r.rule == id) {
                return Err(error(
                    format!("{kind}[{i}].examples[{j}]"),
                    format!(
                        "the rule does not match its example `{ex}` (got {})",
                        v.summary()
                    ),
                ));
            }
        }
        for (j, ex) in counter_examples.iter().enumerate() {
            let v = self.judge_under(ex, &ctx, Enforcement::FULL);
            if v.reasons.iter().any(|r| r.rule == id) {
                return Err(error(
                    format!("{kind}[{i}].counter_examples[{j}]"),
                    format!("the rule matches its counter-example `{ex}`"),
                ));
            }
        }
        Ok(())
    }

    /// Judges a shell command without running anything, under the enforcement the guard was
    /// given ([`Guard::with_enforcement`]).
    pub fn judge_command(&self, command: &str, paths: &PathContext) -> Verdict {
        self.judge_under(command, paths, self.enforcement())
    }

    /// Judges a shell command as if the sandbox enforced `enforcement`.
    pub fn judge_under(
        &self,
        command: &str,
        paths: &PathContext,
        enforcement: Enforcement,
    ) -> Verdict {
        let analysis = shell::analyze_with(command, Some(self.program_options()));
        let mut verdict = Verdict::allow();
        for p in &analysis.problems {
            verdict = verdict.merge(Verdict::single(p.decision, p.id, p.message.clone()));
        }
        let shapes: Vec<argv::Shape> = analysis
            .commands
            .iter()
            .map(|c| argv::shape(c, &self.file.flag_aliases))
            .collect();
        for (cmd, shape) in analysis.commands.iter().zip(&shapes) {
            let judged = if cmd.cd.is_empty() {
                self.judge_simple(cmd, shape, paths)
            } else if let Some(moved) = paths.after_cd(&cmd.cd) {
                self.judge_simple(cmd, shape, &moved)
            } else {
                // After `cd "$DIR"` a relative path could be anywhere.
                let blurred = blur_relative_paths(cmd);
                let blurred_shape = argv::shape(&blurred, &self.file.flag_aliases);
                self.judge_simple(&blurred, &blurred_shape, paths)
            };
            verdict = verdict.merge(judged);
            verdict = verdict.merge(self.judge_bounds(cmd, &analysis.functions, enforcement));
        }
        verdict = verdict.merge(sequence::write_then_run(&analysis.commands, &shapes, paths));
        verdict = verdict.merge(self.judge_staged(&analysis.commands, &shapes, paths));
        verdict = verdict.merge(sequence::through_new_links(
            &analysis.commands,
            &shapes,
            paths,
        ));
        verdict.commands = analysis
            .commands
            .iter()
            .map(|c| c.argv.iter().map(|w| w.text.clone()).collect())
            .collect();
        if let Some(rego) = &self.rego {
            let input = serde_json::json!({
                "command": command,
                "commands": verdict.commands,
                "cwd": paths.cwd,
                "tool": "bash",
                "risk": verdict.risk,
            });
            let commands = std::mem::take(&mut verdict.commands);
            verdict = verdict.merge(rego.judge(&input));
            verdict.commands = commands;
        }
        if verdict.decision == Decision::Deny {
            verdict.risk = 100;
        }
        verdict
    }

    /// Judges a file tool's access to an already confined path (`read`, `edit`) with the
    /// policy's Rego files, given `{command: path, commands: [[tool, path]], cwd, tool, risk}`.
    /// Without Rego files every confined path is allowed.
    pub fn judge_access(&self, tool: &str, path: &Path, cwd: &Path) -> Verdict {
        let Some(rego) = &self.rego else {
            return Verdict::allow();
        };
        let shown = path.display().to_string();
        let input = serde_json::json!({
            "command": shown,
            "commands": [[tool, shown]],
            "cwd": cwd,
            "tool": tool,
            "risk": 0,
        });
        rego.judge(&input)
    }

    fn judge_simple(
        &self,
        cmd: &shell::Command,
        shape: &argv::Shape,
        paths: &PathContext,
    ) -> Verdict {
        let shown = cmd.display();
        let mut v = Verdict::allow();
        for rule in &self.block {
            match rule.check(cmd, shape, paths) {
                Hit::Yes => {
                    v = v.merge(reason(
                        Decision::Deny,
                        rule,
                        100,
                        format!("{}: `{shown}`", rule.description),
                        &self.source,
                    ))
                }
                Hit::Maybe => {
                    v = v.merge(reason(
                        Decision::Ask,
                        rule,
                        0,
                        format!(
                            "{} (could not rule it out: part of `{shown}` is computed at run time)",
                            rule.description
                        ),
                        &self.source,
                    ))
                }
                Hit::No => {}
            }
        }
        let mut sure = 0;
        let mut maybe = 0;
        let mut risky = Vec::new();
        for rule in &self.risk {
            match rule.check(cmd, shape, paths) {
                Hit::Yes => sure += rule.score,
                Hit::Maybe => maybe += rule.score,
                Hit::No => continue,
            }
            risky.push(rule);
        }
        let level_of = |score: u32| {
            if score >= self.file.deny_at {
                Decision::Deny
            } else if score >= self.file.ask_at {
                Decision::Ask
            } else {
                Decision::Allow
            }
        };
        // Points from rules that only may match (a run-time value) can ask, never deny.
        let score = (sure + maybe).min(100);
        let level = level_of(sure.min(100)).max(level_of(score).min(Decision::Ask));
        for rule in risky {
            v = v.merge(reason(
                level,
                rule,
                rule.score,
                format!("{} (+{}): `{shown}`", rule.description, rule.score),
                &self.source,
            ));
        }
        v.risk = v.risk.max(score);
        v = v.merge(self.protected_reach(cmd, &shown, paths));
        if let Some(sql) = sql::clients::judge_client(cmd) {
            v = v.merge(sql);
        }
        for r in installs::judge_installs(
            cmd,
            &paths.cwd,
            self.osv(),
            self.file.allow_unpinned_installs,
        ) {
            v = v.merge(Verdict::single(r.decision, r.rule, r.message));
        }
        v
    }
}

impl Guard {
    /// `ask` when some word of `cmd` names a protected path: as written, after the expansions
    /// bash would make (see [`expand`]), or through a glob or an unknown part that could reach
    /// one. `curl -d @.env`, `--file=.env`, `-F f=@.env`: the path may follow `@` or `=`.
    fn protected_reach(&self, cmd: &shell::Command, shown: &str, paths: &PathContext) -> Verdict {
        let mut v = Verdict::allow();
        let mut budget = expand::Budget::new();
        let ask = |text: &str, why: String| {
            Verdict::single(
                Decision::Ask,
                "protected-path",
                format!("`{shown}` {why} (`{text}`)"),
            )
        };
        for w in cmd
            .argv
            .iter()
            .skip(1)
            .chain(cmd.writes.iter())
            .chain(cmd.reads.iter())
        {
            let reach = if w.dynamic {
                expand::reach(w, &cmd.vars, paths, &mut budget)
            } else {
                expand::Reach {
                    texts: vec![w.text.clone()],
                    ..expand::Reach::default()
                }
            };
            if reach.over_budget {
                v = v.merge(ask(
                    &w.text,
                    format!(
                        "has a glob too large to check against the protected paths (over {} entries or {} ms)",
                        expand::MAX_GLOB_ENTRIES,
                        expand::MAX_GLOB_TIME.as_millis()
                    ),
                ));
            }
            let hit = reach.texts.iter().find_map(|text| {
                [
                    Some(text.as_str()),
                    text.rsplit_once('@').map(|x| x.1),
                    text.rsplit_once('=').map(|x| x.1),
                ]
                .into_iter()
                .flatten()
                .filter(|t| !t.is_empty())
                .find_map(|t| self.protected.matches(&paths.absolute(t)))
            });
            if let Some(pattern) = hit {
                let how = if reach.unknown {
                    "could reach a path"
                } else {
                    "touches a path"
                };
                v = v.merge(ask(
                    &w.text,
                    format!("{how} protected by policy pattern `{pattern}`"),
                ));
                continue;
            }
            let glob_hit = reach.patterns.iter().any(|p| {
                expand::pattern_may_match(p, self.protected.samples(), |c| {
                    self.protected.matches(c).is_some()
                })
            });
            if glob_hit {
                v = v.merge(ask(
                    &w.text,
                    "has a glob that can match a protected path".into(),
                ));
            }
        }
        v
    }
}

/// The command with every relative path argument (and written file) marked as run-time
/// dependent, for when the directory it runs in is not known.
fn blur_relative_paths(cmd: &shell::Command) -> shell::Command {
    let mut c = cmd.clone();
    let relative = |w: &words::Word| !w.text.starts_with(['/', '~', '-']);
    for w in c.argv.iter_mut().skip(1).chain(c.writes.iter_mut()) {
        if relative(w) {
            w.dynamic = true;
        }
    }
    c
}

fn reason(decision: Decision, rule: &Rule, risk: u32, message: String, source: &str) -> Verdict {
    Verdict {
        decision,
        risk: if decision == Decision::Deny { 100 } else { 0 },
        reasons: vec![Reason {
            rule: rule.id.clone(),
            decision,
            risk,
            message,
            source: Some(source.to_string()),
        }],
        commands: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_policy_passes_its_own_examples() {
        let g = Guard::load_checked(None).expect("built-in policy examples");
        assert!(g.file().block.len() >= 15);
    }
}
