//! Turns a command line into every simple command bash would run, using a real bash parser
//! (brush-parser): pipelines, lists, subshells, substitutions, functions, here-docs and the
//! scripts handed to `bash -c`, `eval` and other wrappers. What it cannot account for becomes a
//! [`Problem`], which the guard never allows.

use brush_parser::ParserOptions;
use brush_parser::ast::{
    self, Command as AstCommand, CommandPrefixOrSuffixItem as Item, CompoundCommand, CompoundList,
    IoFileRedirectKind, IoFileRedirectTarget, IoRedirect,
};

use super::decision::Decision;
use super::screen::too_complex;
use super::words::{self, Word};
use super::wrappers::{self, Unwrapped, basename};

/// Deepest chain of scripts inside scripts (`bash -c "eval '...'"`).
pub const MAX_SCRIPT_DEPTH: usize = 8;
/// Most simple commands one call may contain.
pub const MAX_COMMANDS: usize = 1000;

/// One simple command the call would run.
#[derive(Debug, Clone, Default)]
pub struct Command {
    pub argv: Vec<Word>,
    /// Files the command's output is redirected to (`>`, `>>`, `&>`, `<>`), including
    /// redirections of enclosing compound commands.
    pub writes: Vec<Word>,
    /// Program of the previous pipeline stage, when stdin is a pipe from a simple command.
    pub piped_from: Option<String>,
    /// Stdin is a pipe (from any stage) or a here-doc/here-string.
    pub stdin_fed: bool,
    /// Arguments are also read from stdin (`xargs`).
    pub args_from_stdin: bool,
    /// Wrappers this command was reached through, outermost first.
    pub via: Vec<String>,
}

impl Command {
    pub fn program(&self) -> &str {
        self.argv.first().map(|w| basename(&w.text)).unwrap_or("")
    }

    pub fn display(&self) -> String {
        self.argv
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A construct the guard cannot account for, with the least strict decision it deserves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub id: &'static str,
    pub decision: Decision,
    pub message: String,
}

/// Everything the guard learned from a command line.
#[derive(Debug, Default)]
pub struct Analysis {
    pub commands: Vec<Command>,
    pub problems: Vec<Problem>,
}

/// Parses `src` and lists every simple command it would run.
pub fn analyze(src: &str) -> Analysis {
    let mut a = Analysis::default();
    let mut w = Walker {
        out: &mut a,
        functions: Vec::new(),
        options: ParserOptions::default(),
    };
    w.script(src, 0, &Ctx::default());
    a
}

#[derive(Clone, Default)]
struct Ctx {
    writes: Vec<Word>,
    piped_from: Option<String>,
    stdin_fed: bool,
    via: Vec<String>,
    in_function: Option<String>,
    /// Text fed to stdin by a here-doc or here-string.
    stdin_text: Option<Word>,
}

struct Walker<'a> {
    out: &'a mut Analysis,
    functions: Vec<String>,
    options: ParserOptions,
}

impl Walker<'_> {
    fn problem(&mut self, id: &'static str, decision: Decision, message: String) {
        if !self
            .out
            .problems
            .iter()
            .any(|p| p.id == id && p.message == message)
        {
            self.out.problems.push(Problem {
                id,
                decision,
                message,
            });
        }
    }

    fn script(&mut self, src: &str, depth: usize, ctx: &Ctx) {
        if depth > MAX_SCRIPT_DEPTH {
            self.problem(
                "too-complex",
                Decision::Deny,
                format!("scripts nested more than {MAX_SCRIPT_DEPTH} levels deep"),
            );
            return;
        }
        if let Some(why) = too_complex(src) {
            self.problem("too-complex", Decision::Deny, why);
            return;
        }
        let mut parser = brush_parser::Parser::new(std::io::Cursor::new(src), &self.options);
        match parser.parse_program() {
            Ok(program) => {
                for list in &program.complete_commands {
                    self.list(list, depth, ctx);
                }
            }
            Err(e) => self.problem(
                "parse-error",
                Decision::Ask,
                format!("bash would not parse this the way the guard can check: {e}"),
            ),
        }
    }

    fn list(&mut self, list: &CompoundList, depth: usize, ctx: &Ctx) {
        for item in &list.0 {
            self.pipeline(&item.0.first, depth, ctx);
            for next in &item.0.additional {
                let (ast::AndOr::And(p) | ast::AndOr::Or(p)) = next;
                self.pipeline(p, depth, ctx);
            }
        }
    }

    fn pipeline(&mut self, p: &ast::Pipeline, depth: usize, ctx: &Ctx) {
        let mut previous: Option<String> = None;
        for (i, cmd) in p.seq.iter().enumerate() {
            let mut c = ctx.clone();
            if i > 0 {
                c.stdin_fed = true;
                c.piped_from = previous.clone();
            }
            previous = self.command(cmd, depth, &c);
        }
    }

    /// Walks one command; returns the innermost program it runs, for the next pipeline stage.
    fn command(&mut self, cmd: &AstCommand, depth: usize, ctx: &Ctx) -> Option<String> {
        match cmd {
            AstCommand::Simple(s) => self.simple(s, depth, ctx),
            AstCommand::Compound(cc, redirects) => {
                let mut c = ctx.clone();
                if let Some(r) = redirects {
                    for r in &r.0 {
                        self.redirect(r, depth, &mut c);
                    }
                }
                self.compound(cc, depth, &c);
                None
            }
            AstCommand::Function(f) => {
                let name = f.fname.value.clone();
                self.functions.push(name.clone());
                let mut c = ctx.clone();
                c.in_function = Some(name);
                if let Some(r) = &f.body.1 {
                    for r in &r.0 {
                        self.redirect(r, depth, &mut c);
                    }
                }
                self.compound(&f.body.0, depth, &c);
                None
            }
            AstCommand::ExtendedTest(t, _) => {
                self.extended_test(&t.expr, depth, ctx);
                None
            }
        }
    }

    fn extended_test(&mut self, e: &ast::ExtendedTestExpr, depth: usize, ctx: &Ctx) {
        use ast::ExtendedTestExpr as E;
        match e {
            E::And(a, b) | E::Or(a, b) => {
                self.extended_test(a, depth, ctx);
                self.extended_test(b, depth, ctx);
            }
            E::Not(a) | E::Parenthesized(a) => self.extended_test(a, depth, ctx),
            E::UnaryTest(_, w) => {
                self.word(&w.value, depth, ctx);
            }
            E::BinaryTest(_, a, b) => {
                self.word(&a.value, depth, ctx);
                self.word(&b.value, depth, ctx);
            }
        }
    }

    fn compound(&mut self, cc: &CompoundCommand, depth: usize, ctx: &Ctx) {
        match cc {
            CompoundCommand::Arithmetic(a) => self.arithmetic(&a.expr.value, depth, ctx),
            CompoundCommand::ArithmeticForClause(f) => {
                for e in [&f.initializer, &f.condition, &f.updater]
                    .into_iter()
                    .flatten()
                {
                    self.arithmetic(&e.value, depth, ctx);
                }
                self.list(&f.body.list, depth, ctx);
            }
            CompoundCommand::BraceGroup(b) => self.list(&b.list, depth, ctx),
            CompoundCommand::Subshell(s) => self.list(&s.list, depth, ctx),
            CompoundCommand::ForClause(f) => {
                for w in f.values.iter().flatten() {
                    self.word(&w.value, depth, ctx);
                }
                self.list(&f.body.list, depth, ctx);
            }
            CompoundCommand::CaseClause(c) => {
                self.word(&c.value.value, depth, ctx);
                for item in &c.cases {
                    for p in &item.patterns {
                        self.word(&p.value, depth, ctx);
                    }
                    if let Some(l) = &item.cmd {
                        self.list(l, depth, ctx);
                    }
                }
            }
            CompoundCommand::IfClause(i) => {
                self.list(&i.condition, depth, ctx);
                self.list(&i.then, depth, ctx);
                for e in i.elses.iter().flatten() {
                    if let Some(c) = &e.condition {
                        self.list(c, depth, ctx);
                    }
                    self.list(&e.body, depth, ctx);
                }
            }
            CompoundCommand::WhileClause(w) | CompoundCommand::UntilClause(w) => {
                self.list(&w.0, depth, ctx);
                self.list(&w.1.list, depth, ctx);
            }
            CompoundCommand::Coprocess(c) => {
                self.command(&c.body, depth, ctx);
            }
        }
    }

    fn arithmetic(&mut self, expr: &str, depth: usize, ctx: &Ctx) {
        let mut e = words::Evaluated::default();
        words::collect_arithmetic(expr, &mut e);
        self.absorb(e, depth, ctx);
    }

    /// Evaluates a word, judging the commands its substitutions would run.
    fn word(&mut self, raw: &str, depth: usize, ctx: &Ctx) -> Option<Word> {
        let e = words::evaluate(raw, &self.options);
        self.absorb(e, depth, ctx)
    }

    fn absorb(&mut self, e: words::Evaluated, depth: usize, ctx: &Ctx) -> Option<Word> {
        for p in e.problems {
            self.problem("unreadable-word", Decision::Ask, p);
        }
        let sub_ctx = Ctx {
            in_function: ctx.in_function.clone(),
            ..Ctx::default()
        };
        // Substitutions nest no deeper than the text itself, which `too_complex` bounds.
        for s in &e.substitutions {
            self.script(s, depth, &sub_ctx);
        }
        e.word
    }

    fn redirect(&mut self, r: &IoRedirect, depth: usize, ctx: &mut Ctx) {
        match r {
            IoRedirect::File(_, kind, target) => match target {
                IoFileRedirectTarget::Filename(w) => {
                    let word = self.word(&w.value, depth, ctx);
                    let writes = matches!(
                        kind,
                        IoFileRedirectKind::Write
                            | IoFileRedirectKind::Append
                            | IoFileRedirectKind::Clobber
                            | IoFileRedirectKind::ReadAndWrite
                            | IoFileRedirectKind::DuplicateOutput
                    );
                    if let (true, Some(w)) = (writes, word) {
                        // `>&2` duplicates a descriptor; `>&file` writes a file.
                        if !(matches!(kind, IoFileRedirectKind::DuplicateOutput)
                            && w.text.chars().all(|c| c.is_ascii_digit() || c == '-'))
                        {
                            ctx.writes.push(w);
                        }
                    }
                }
                IoFileRedirectTarget::Duplicate(w) => {
                    self.word(&w.value, depth, ctx);
                }
                IoFileRedirectTarget::Fd(_) => {}
                IoFileRedirectTarget::ProcessSubstitution(_, sub) => {
                    let c = ctx.clone();
                    self.list(&sub.list, depth, &c);
                }
            },
            IoRedirect::HereDocument(_, doc) => {
                if doc.requires_expansion
                    && let Ok(pieces) =
                        brush_parser::word::parse_heredoc(&doc.doc.value, &self.options)
                {
                    for p in pieces {
                        if let brush_parser::word::WordPiece::CommandSubstitution(s)
                        | brush_parser::word::WordPiece::BackquotedCommandSubstitution(s) =
                            p.piece
                        {
                            self.script(&s, depth + 1, &Ctx::default());
                        }
                    }
                }
                ctx.stdin_fed = true;
                ctx.piped_from = None;
                ctx.stdin_text = Some(Word {
                    text: doc.doc.value.clone(),
                    dynamic: doc.requires_expansion && doc.doc.value.contains(['$', '`']),
                });
            }
            IoRedirect::HereString(_, w) => {
                let word = self.word(&w.value, depth, ctx);
                ctx.stdin_fed = true;
                ctx.piped_from = None;
                ctx.stdin_text = word;
            }
            IoRedirect::OutputAndError(w, _) => {
                if let Some(w) = self.word(&w.value, depth, ctx) {
                    ctx.writes.push(w);
                }
            }
        }
    }

    fn simple(&mut self, s: &ast::SimpleCommand, depth: usize, ctx: &Ctx) -> Option<String> {
        let mut c = ctx.clone();
        c.stdin_text = None;
        let mut argv: Vec<Word> = Vec::new();
        for item in s.prefix.iter().flat_map(|p| p.0.iter()) {
            self.item(item, depth, &mut c, &mut argv);
        }
        if let Some(name) = &s.word_or_name
            && let Some(w) = self.word(&name.value, depth, &c)
        {
            argv.push(w);
        }
        for item in s.suffix.iter().flat_map(|p| p.0.iter()) {
            self.item(item, depth, &mut c, &mut argv);
        }
        if argv.is_empty() {
            return None;
        }
        if self.out.commands.len() >= MAX_COMMANDS {
            self.problem(
                "too-complex",
                Decision::Deny,
                format!("more than {MAX_COMMANDS} commands in one call"),
            );
            return None;
        }
        Some(self.run(argv, depth, c, false))
    }

    fn item(&mut self, item: &Item, depth: usize, ctx: &mut Ctx, argv: &mut Vec<Word>) {
        match item {
            Item::IoRedirect(r) => self.redirect(r, depth, ctx),
            Item::Word(w) => {
                if let Some(w) = self.word(&w.value, depth, ctx) {
                    argv.push(w);
                }
            }
            Item::AssignmentWord(a, w) => {
                match &a.value {
                    ast::AssignmentValue::Scalar(v) => {
                        self.word(&v.value, depth, ctx);
                    }
                    ast::AssignmentValue::Array(values) => {
                        for (k, v) in values {
                            if let Some(k) = k {
                                self.word(&k.value, depth, ctx);
                            }
                            self.word(&v.value, depth, ctx);
                        }
                    }
                }
                // As an argument (`export X=1`, `declare -a X=(...)`) the word is passed on.
                if !argv.is_empty() {
                    argv.push(Word::literal(w.value.clone()));
                }
            }
            Item::ProcessSubstitution(_, sub) => {
                let c = Ctx {
                    in_function: ctx.in_function.clone(),
                    ..Ctx::default()
                };
                self.list(&sub.list, depth, &c);
                argv.push(Word {
                    text: "/dev/fd/63".to_string(),
                    dynamic: true,
                });
            }
        }
    }

    /// Records a command and everything it runs through wrappers; returns its innermost program.
    fn run(&mut self, argv: Vec<Word>, depth: usize, ctx: Ctx, args_from_stdin: bool) -> String {
        let name = basename(&argv[0].text).to_string();
        if argv[0].dynamic {
            self.problem(
                "dynamic-command",
                Decision::Ask,
                format!("the program name `{}` is computed at run time, so the guard cannot tell what runs", argv[0].text),
            );
        }
        if ctx.in_function.as_deref() == Some(name.as_str()) {
            self.problem(
                "recursive-function",
                Decision::Deny,
                format!("function `{name}` calls itself (the fork-bomb pattern)"),
            );
        }
        let inner = wrappers::unwrap(&argv);
        self.out.commands.push(Command {
            argv: argv.clone(),
            writes: ctx.writes.clone(),
            piped_from: ctx.piped_from.clone(),
            stdin_fed: ctx.stdin_fed,
            args_from_stdin,
            via: ctx.via.clone(),
        });
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
            && argv[1..]
                .iter()
                .all(|w| w.text.starts_with('-') && w.text != "-c");
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
        innermost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argvs(src: &str) -> Vec<String> {
        analyze(src).commands.iter().map(|c| c.display()).collect()
    }

    #[test]
    fn finds_every_simple_command() {
        assert_eq!(
            argvs("ls -la | grep x && echo ok; (cd /tmp) &"),
            ["ls -la", "grep x", "echo ok", "cd /tmp"]
        );
        assert_eq!(argvs("echo $(rm -rf /)"), ["rm -rf /", "echo $(rm -rf /)"]);
        assert_eq!(argvs("echo `rm x`"), ["rm x", "echo `rm x`"]);
        assert_eq!(argvs("cat <(rm y)"), ["rm y", "cat /dev/fd/63"]);
        assert_eq!(
            argvs("bash -c 'rm -rf /'"),
            ["bash -c rm -rf /", "rm -rf /"]
        );
        assert_eq!(argvs("eval \"rm -rf /\""), ["eval rm -rf /", "rm -rf /"]);
        assert_eq!(
            argvs("sudo timeout 5 rm x"),
            ["sudo timeout 5 rm x", "timeout 5 rm x", "rm x"]
        );
        assert_eq!(argvs("if true; then rm a; fi"), ["true", "rm a"]);
        assert_eq!(argvs("f() { rm b; }"), ["rm b"]);
        assert_eq!(argvs("bash <<EOF\nrm -rf /\nEOF"), ["bash", "rm -rf /"]);
        assert_eq!(argvs("X=$(rm z) true"), ["rm z", "true"]);
    }

    #[test]
    fn redirects_and_pipes_are_recorded() {
        let a = analyze("{ echo x; } > /etc/passwd");
        assert_eq!(a.commands[0].writes[0].text, "/etc/passwd");
        let a = analyze("curl -s http://x | sudo bash");
        let bash = a.commands.iter().find(|c| c.program() == "bash").unwrap();
        assert_eq!(bash.piped_from.as_deref(), Some("curl"));
        assert!(a.problems.iter().any(|p| p.id == "stdin-code"));
        let a = analyze("echo hi 2>&1 >/dev/null");
        assert_eq!(a.commands[0].writes.len(), 1);
    }

    #[test]
    fn unaccountable_constructs_are_problems() {
        for src in [
            "$CMD -rf /",
            "/usr/bin/r? x",
            "{rm,-rf,/}",
            "$(echo rm) x",
            "bash -c \"$X\"",
            "eval $X",
            "a b 'c",
        ] {
            assert!(!analyze(src).problems.is_empty(), "{src}");
        }
        assert!(
            analyze(":(){ :|:& };:")
                .problems
                .iter()
                .any(|p| p.id == "recursive-function")
        );
    }

    #[test]
    fn hostile_nesting_fails_closed_quickly() {
        let deep = "$(".repeat(5000) + &")".repeat(5000);
        let started = std::time::Instant::now();
        let a = analyze(&deep);
        assert!(a.problems.iter().any(|p| p.id == "too-complex"));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // Just under the limit still parses without exhausting the stack.
        let ok = "echo ".to_string() + &"$(echo ".repeat(60) + &")".repeat(60);
        assert!(analyze(&ok).problems.iter().all(|p| p.id != "too-complex"));
        let ifs = "if true; then ".repeat(60) + "ls" + &"; fi".repeat(60);
        assert!(
            analyze(&ifs).problems.is_empty(),
            "{:?}",
            analyze(&ifs).problems
        );
    }
}
