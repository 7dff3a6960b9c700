//! What one simple command runs: it is recorded with its context, looked through when it is a
//! wrapper (`sudo`, `xargs`, `bash -c`, ...), and checked for code it reads from stdin, scripts
//! computed at run time, and directory changes that move the commands after it.

use super::{Command, Ctx, MAX_WRAPPERS, Walker};
use crate::guard::decision::Decision;
use crate::guard::options::{Effect, OptionUse};
use crate::guard::words::Word;
use crate::guard::wrappers::{self, Unwrapped, basename};

impl Walker<'_> {
    /// Records a command and everything it runs through wrappers; returns its innermost program.
    pub(super) fn run(
        &mut self,
        argv: Vec<Word>,
        depth: usize,
        ctx: Ctx,
        args_from_stdin: bool,
    ) -> String {
        let name = basename(&argv[0].text).to_string();
        if !argv[0].dynamic
            && let Some(at) = self.aliases.iter().rposition(|(n, _)| *n == argv[0].text)
        {
            // An alias (or a `hash -p` name) runs what it stands for; bash does not expand
            // the same alias again inside its own text.
            let (alias, value) = self.aliases.remove(at);
            let rest: Vec<String> = argv[1..].iter().map(quoted).collect();
            self.script(&format!("{value} {}", rest.join(" ")), depth + 1, &ctx);
            self.aliases.insert(at, (alias, value));
            return name;
        }
        if argv[0].dynamic {
            self.problem(
                "dynamic-command",
                Decision::Ask,
                format!("the program name `{}` is computed at run time, so the guard cannot tell what runs", argv[0].text),
            );
        }
        if let Some(f) = &ctx.in_function {
            self.calls.push((f.clone(), name.clone()));
        }
        if ctx.via.len() >= MAX_WRAPPERS {
            self.problem(
                "too-complex",
                Decision::Deny,
                format!("more than {MAX_WRAPPERS} wrappers around one command"),
            );
            return name;
        }
        let mut inner = wrappers::unwrap(&argv);
        if inner.is_empty()
            && let Some(script) = wrappers::embedded_shell_script(&argv)
        {
            inner.push(Unwrapped::Script {
                wrapper: name.clone(),
                script,
            });
        }
        let (option_uses, option_writes) = self.option_effects(&name, &argv, &mut inner);
        let script = argv[1..]
            .iter()
            .find(|w| !w.text.starts_with('-') || w.dynamic);
        if let Some(script) =
            script.filter(|w| w.dynamic && inner.is_empty() && wrappers::runs_script_file(&name))
        {
            self.problem(
                "dynamic-script",
                Decision::Ask,
                format!(
                    "`{name}` runs a script file computed at run time (`{}`)",
                    script.text
                ),
            );
        }
        let mut writes = ctx.writes.clone();
        writes.extend(option_writes);
        self.out.commands.push(Command {
            argv: argv.clone(),
            writes,
            piped_from: ctx.piped_from.clone(),
            stdin_fed: ctx.stdin_fed,
            args_from_stdin,
            via: ctx.via.clone(),
            reads: ctx.reads.clone(),
            cd: self.cd.clone(),
            vars: self.vars.clone(),
            option_uses,
        });
        match name.as_str() {
            "cd" | "pushd" => {
                let target = argv[1..]
                    .iter()
                    .find(|w| w.dynamic || !w.text.starts_with('-') || w.text == "-");
                self.cd.push(match target {
                    Some(w) if w.text == "-" => Word {
                        text: "-".into(),
                        dynamic: true,
                    },
                    Some(w) => w.clone(),
                    None => Word::literal("~"),
                });
            }
            "popd" => self.cd.push(Word {
                text: "popd".into(),
                dynamic: true,
            }),
            _ => {}
        }
        let mut innermost = name.clone();
        let wraps = !inner.is_empty();
        for u in inner {
            let mut c = ctx.clone();
            match u {
                Unwrapped::Command {
                    wrapper,
                    argv,
                    args_from_stdin,
                } => {
                    c.via.push(wrapper);
                    let mut argv = argv;
                    if args_from_stdin {
                        // xargs appends words read from stdin: an argument the guard cannot see.
                        argv.push(Word {
                            text: "<arguments from stdin>".to_string(),
                            dynamic: true,
                        });
                    }
                    if !argv.is_empty() {
                        innermost = self.run(argv, depth, c, args_from_stdin);
                    }
                }
                Unwrapped::Script { wrapper, script } => {
                    if script.dynamic {
                        self.problem(
                            "dynamic-script",
                            Decision::Ask,
                            format!(
                                "`{wrapper}` runs a script computed at run time (`{}`)",
                                script.text
                            ),
                        );
                    }
                    c.via.push(wrapper);
                    c.writes.clear();
                    self.script(&script.text, depth + 1, &c);
                }
            }
        }
        // A shell or interpreter with no script of its own runs whatever arrives on stdin.
        let reads_stdin = (wrappers::is_shell(&name)
            || wrappers::STDIN_INTERPRETERS.contains(&name.as_str()))
            && !wraps
            && wrappers::script_from_stdin(&name, &argv);
        let sql_from_stdin = wrappers::STDIN_SQL_CLIENTS.contains(&name.as_str())
            && !argv[1..].iter().any(|w| {
                wrappers::SQL_CLIENT_INLINE
                    .iter()
                    .any(|o| w.text == *o || w.text.starts_with(&format!("{o}=")))
                    || (name == "redis-cli" && !w.text.starts_with('-'))
            });
        if sql_from_stdin && ctx.stdin_fed {
            self.problem(
                "stdin-sql",
                Decision::Ask,
                format!("`{name}` runs statements read from stdin, which the guard cannot see"),
            );
        }
        if reads_stdin && ctx.stdin_fed {
            match &ctx.stdin_text {
                Some(text) if wrappers::is_shell(&name) && !text.dynamic => {
                    let mut c = ctx.clone();
                    c.via.push(name.clone());
                    c.stdin_text = None;
                    c.stdin_fed = false;
                    self.script(&text.text, depth + 1, &c);
                }
                _ => self.problem(
                    "stdin-code",
                    Decision::Ask,
                    format!("`{name}` runs code read from stdin, which the guard cannot see"),
                ),
            }
        }
        // After the alias's own text was judged above, so it is not expanded into itself.
        self.define_names(&name, &argv);
        innermost
    }

    /// The policy's `program_options` that `argv` uses: a value that runs a program becomes a
    /// script to judge (in `inner`), a value that is a written file is returned with the uses.
    fn option_effects(
        &self,
        name: &str,
        argv: &[Word],
        inner: &mut Vec<Unwrapped>,
    ) -> (Vec<OptionUse>, Vec<Word>) {
        let uses = match self.program_options {
            Some(table) if table.covers(name) => table.find(argv),
            _ => return (Vec::new(), Vec::new()),
        };
        let mut writes = Vec::new();
        for u in &uses {
            match u.effect {
                Effect::Runs => inner.push(Unwrapped::Script {
                    wrapper: format!("{name} {}", u.option),
                    script: Word {
                        // `!cmd` (a git alias, an editor's shell escape) runs `cmd`.
                        text: u
                            .value
                            .text
                            .trim_start_matches([':', '!', ' ', '\t'])
                            .to_string(),
                        dynamic: u.value.dynamic,
                    },
                }),
                Effect::Writes => writes.push(u.value.clone()),
                Effect::Interprets => {}
            }
        }
        (uses, writes)
    }

    /// Records what `alias NAME=VALUE` and `hash -p PATH NAME` make a name run, and flags
    /// `test -v "$x"` (a computed variable name, whose subscript may run code).
    fn define_names(&mut self, name: &str, argv: &[Word]) {
        match name {
            "alias" => {
                for w in &argv[1..] {
                    if let Some((n, v)) = w.text.split_once('=')
                        && !w.dynamic
                    {
                        self.aliases.push((n.to_string(), v.to_string()));
                    }
                }
            }
            "hash" => {
                if let Some(p) = argv.iter().position(|w| w.text == "-p")
                    && let Some(path) = argv.get(p + 1)
                {
                    for n in argv[p + 2..].iter().filter(|w| !w.text.starts_with('-')) {
                        if n.dynamic || path.dynamic {
                            self.problem(
                                "dynamic-command",
                                Decision::Ask,
                                format!("`hash -p {} {}` makes a name run a program computed at run time", path.text, n.text),
                            );
                        }
                        self.aliases.push((n.text.clone(), quoted(path)));
                    }
                }
            }
            "test" | "["
                if argv
                    .windows(2)
                    .any(|w| w[0].text == "-v" && !w[0].dynamic && w[1].dynamic) =>
            {
                self.indirect_name("test -v");
            }
            _ => {}
        }
    }
}

/// A word as shell text that evaluates to it again: single-quoted when its value is known,
/// as written (expansions and globs kept) when it is computed.
fn quoted(w: &Word) -> String {
    if w.dynamic {
        w.text.clone()
    } else {
        format!("'{}'", w.text.replace('\'', "'\\''"))
    }
}
