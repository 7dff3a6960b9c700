//! Turns a command line into every simple command bash would run, using a real bash parser
//! (brush-parser): pipelines, lists, subshells, substitutions, functions, here-docs and the
//! scripts handed to `bash -c`, `eval` and other wrappers. What it cannot account for becomes a
//! [`Problem`], which the guard never allows.

use brush_parser::ParserOptions;
use brush_parser::ast::{
    self, Command as AstCommand, CommandPrefixOrSuffixItem as Item, CompoundList,
    IoFileRedirectKind, IoFileRedirectTarget, IoRedirect,
};

use super::decision::Decision;
use super::options::{OptionUse, ProgramOptions};
use super::screen::too_complex;
use super::words::{self, Word};
use super::wrappers::{self, basename};

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
    /// Files redirected into the command's stdin (`< file`).
    pub reads: Vec<Word>,
    /// Directory changes (`cd`, `pushd`) earlier on the command line, in order; the command
    /// runs in the directory they lead to.
    pub cd: Vec<Word>,
    /// Shell variables assigned earlier on the command line (`D=/etc; ...`), latest last; a
    /// dynamic value is one the guard cannot know.
    pub vars: Vec<(String, Word)>,
    /// Options of the policy's `program_options` table the command uses, with their values.
    pub option_uses: Vec<OptionUse>,
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
    /// Functions the command line defines: calling one runs its body, judged where defined.
    pub functions: Vec<String>,
}

/// The `via` entry of commands found by reading an arithmetic `(( ))` as nested subshells,
/// as bash may: judged by the rules, but most of what it "runs" is arithmetic.
pub const ARITHMETIC: &str = "((";

/// Most wrappers looked through for one command (`nice nice nice ... ls`).
pub const MAX_WRAPPERS: usize = 16;

/// Parses `src` and lists every simple command it would run. A parser failure (even a panic
/// inside the parser) becomes a `deny`, never an answer that lets the command through.
pub fn analyze(src: &str) -> Analysis {
    analyze_with(src, None)
}

/// Like [`analyze`], also looking through the options of `options` that run a program (their
/// values are judged as command lines) or write a file (added to the command's writes).
pub fn analyze_with(src: &str, options: Option<&ProgramOptions>) -> Analysis {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| analyze_inner(src, options))) {
        Ok(a) => a,
        Err(_) => Analysis {
            commands: Vec::new(),
            problems: vec![Problem {
                id: "parser-failure",
                decision: Decision::Deny,
                message: "the shell parser failed on this command, so it cannot be judged".into(),
            }],
            functions: Vec::new(),
        },
    }
}

fn analyze_inner(src: &str, options: Option<&ProgramOptions>) -> Analysis {
    let mut a = Analysis::default();
    let mut w = Walker {
        out: &mut a,
        program_options: options,
        functions: Vec::new(),
        calls: Vec::new(),
        options: ParserOptions::default(),
        cd: Vec::new(),
        aliases: Vec::new(),
        vars: Vec::new(),
        pending: Vec::new(),
    };
    w.script(src, 0, &Ctx::default());
    if let Some(f) = call_cycle(&w.functions, &w.calls) {
        w.problem(
            "recursive-function",
            Decision::Deny,
            format!("function `{f}` ends up calling itself (the fork-bomb pattern)"),
        );
    }
    let functions = std::mem::take(&mut w.functions);
    a.functions = functions;
    a
}

/// A defined function that reaches itself through the calls made in function bodies.
fn call_cycle(functions: &[String], calls: &[(String, String)]) -> Option<String> {
    for start in functions {
        let mut seen: Vec<&str> = Vec::new();
        let mut stack: Vec<&str> = calls
            .iter()
            .filter(|(f, _)| f == start)
            .map(|(_, c)| c.as_str())
            .collect();
        while let Some(f) = stack.pop() {
            if f == start {
                return Some(start.clone());
            }
            if seen.contains(&f) {
                continue;
            }
            seen.push(f);
            stack.extend(
                calls
                    .iter()
                    .filter(|(g, _)| g == f)
                    .map(|(_, c)| c.as_str()),
            );
        }
    }
    None
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
    /// Files redirected into stdin.
    reads: Vec<Word>,
}

struct Walker<'a> {
    out: &'a mut Analysis,
    /// Options that run a program or write a file, from the policy.
    program_options: Option<&'a ProgramOptions>,
    functions: Vec<String>,
    /// (function, program it calls) for every call made inside a function body.
    calls: Vec<(String, String)>,
    options: ParserOptions,
    /// `cd` targets seen so far (conservatively, also those inside subshells).
    cd: Vec<Word>,
    /// Aliases and `hash -p` names defined so far: name, the text it stands for.
    aliases: Vec<(String, String)>,
    /// Variables assigned so far by plain assignments (`X=1`, `export X=1`).
    vars: Vec<(String, Word)>,
    /// Assignments of the simple command being walked, kept if it is a plain assignment.
    pending: Vec<(String, Word)>,
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

    /// A variable name computed at run time and then evaluated (`[[ -v $x ]]`): a name such
    /// as `a[$(cmd)]` runs the command in its subscript.
    pub(super) fn indirect_name(&mut self, construct: &str) {
        self.problem(
            "indirect-code",
            Decision::Ask,
            format!("`{construct}` evaluates a variable name computed at run time; a subscript in it (`a[$(cmd)]`) runs a command"),
        );
    }

    fn redirect(&mut self, r: &IoRedirect, depth: usize, ctx: &mut Ctx) {
        match r {
            IoRedirect::File(_, kind, target) => match target {
                IoFileRedirectTarget::Filename(w) => {
                    let word = self.word(&w.value, depth, ctx);
                    let fd = match r {
                        IoRedirect::File(fd, ..) => fd.as_ref().map(|f| f.to_string()),
                        _ => None,
                    };
                    if let (IoFileRedirectKind::Read, Some(w)) = (kind, &word) {
                        ctx.reads.push(w.clone());
                    }
                    if matches!(kind, IoFileRedirectKind::Read)
                        && fd.as_deref().is_none_or(|f| f == "0")
                    {
                        // `< file`: stdin is a file whose content the guard does not see.
                        ctx.stdin_fed = true;
                        ctx.piped_from = None;
                        ctx.stdin_text = None;
                    }
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
                    // `>&file` writes a file; `>&2` and `>&-` only duplicate or close.
                    if let Some(word) = self.word(&w.value, depth, ctx) {
                        let is_fd = word.text.chars().all(|c| c.is_ascii_digit() || c == '-');
                        if matches!(kind, IoFileRedirectKind::DuplicateOutput) && !is_fd {
                            ctx.writes.push(word);
                        }
                    }
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
        // Substitutions inside this command's words walk commands of their own.
        let outer = std::mem::take(&mut self.pending);
        let program = self.simple_inner(s, depth, ctx);
        self.pending = outer;
        program
    }

    fn simple_inner(&mut self, s: &ast::SimpleCommand, depth: usize, ctx: &Ctx) -> Option<String> {
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
        let assigns = argv.first().is_none_or(|p| {
            matches!(
                p.text.as_str(),
                "export" | "declare" | "typeset" | "readonly" | "local"
            )
        });
        if assigns {
            let pending = std::mem::take(&mut self.pending);
            self.vars.extend(pending);
        }
        if argv.is_empty() {
            if c.writes.is_empty() && c.reads.is_empty() {
                return None;
            }
            // `> file` alone truncates the file, like `: > file`.
            argv.push(Word::literal(":"));
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
                let name = match &a.name {
                    ast::AssignmentName::VariableName(n) => n.as_str(),
                    ast::AssignmentName::ArrayElementName(n, index) => {
                        // `a[$(cmd)]=1`: the subscript is evaluated, substitutions and all.
                        self.word(&format!("\"{}\"", index.replace('"', "\\\"")), depth, ctx);
                        n.as_str()
                    }
                };
                let exported = argv.first().is_none_or(|p| {
                    matches!(
                        p.text.as_str(),
                        "export" | "declare" | "typeset" | "readonly" | "local" | "env"
                    )
                });
                if exported && wrappers::injects_code(name) {
                    self.problem(
                        "env-injection",
                        Decision::Ask,
                        format!("setting `{name}` makes programs run code or load libraries the guard cannot see"),
                    );
                }
                let mut values = Vec::new();
                match &a.value {
                    ast::AssignmentValue::Scalar(v) => {
                        let value = self.word(&v.value, depth, ctx);
                        self.pending.push((
                            name.to_string(),
                            value.clone().unwrap_or_else(|| Word::literal("")),
                        ));
                        values.extend(value);
                    }
                    ast::AssignmentValue::Array(items) => {
                        for (k, v) in items {
                            if let Some(k) = k {
                                self.word(&k.value, depth, ctx);
                            }
                            values.extend(self.word(&v.value, depth, ctx));
                        }
                    }
                }
                // `x='a[$(id)]'`: the text of a substitution stored for later, which bash runs
                // when the value is expanded as arithmetic (`$((x))`), a prompt (`${x@P}`) or
                // a subscript.
                if values
                    .iter()
                    .any(|v| !v.dynamic && (v.text.contains("$(") || v.text.contains('`')))
                {
                    self.problem(
                        "deferred-code",
                        Decision::Ask,
                        format!("`{name}` is given the text of a command substitution, which bash runs if the value is later evaluated (arithmetic, `${{{name}@P}}`, a subscript)"),
                    );
                }
                // As an argument (`export X=1`, `declare -a X=(...)`) the word is passed on.
                if !argv.is_empty() {
                    let evaluated = words::evaluate(&w.value, &self.options);
                    argv.extend(evaluated.word);
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
}

mod compound;
mod run;
#[cfg(test)]
mod tests;
