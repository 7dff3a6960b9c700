//! Compound commands (`if`, loops, `case`, groups, arithmetic, `[[ ]]`): the commands and
//! words inside them, and the constructs in them that run code or processes without bound.

use brush_parser::ast::{self, CompoundCommand, CompoundList};

use super::{ARITHMETIC, Ctx, Walker};
use crate::guard::decision::Decision;
use crate::guard::words;

impl Walker<'_> {
    pub(super) fn extended_test(&mut self, e: &ast::ExtendedTestExpr, depth: usize, ctx: &Ctx) {
        use ast::ExtendedTestExpr as E;
        match e {
            E::And(a, b) | E::Or(a, b) => {
                self.extended_test(a, depth, ctx);
                self.extended_test(b, depth, ctx);
            }
            E::Not(a) | E::Parenthesized(a) => self.extended_test(a, depth, ctx),
            E::UnaryTest(op, w) => {
                let word = self.word(&w.value, depth, ctx);
                if matches!(op, ast::UnaryPredicate::ShellVariableIsSetAndAssigned)
                    && word.is_some_and(|w| w.dynamic)
                {
                    self.indirect_name("[[ -v");
                }
            }
            E::BinaryTest(_, a, b) => {
                self.word(&a.value, depth, ctx);
                self.word(&b.value, depth, ctx);
            }
        }
    }

    pub(super) fn compound(&mut self, cc: &CompoundCommand, depth: usize, ctx: &Ctx) {
        match cc {
            CompoundCommand::Arithmetic(a) => {
                self.arithmetic(&a.expr.value, depth, ctx);
                // `( (rm -rf /) )` reaches us as arithmetic `((`, but bash runs it as nested
                // subshells: judge the text as commands too.
                let mut inner = Walker {
                    out: &mut *self.out,
                    program_options: self.program_options,
                    functions: Vec::new(),
                    calls: Vec::new(),
                    options: self.options.clone(),
                    cd: self.cd.clone(),
                    aliases: self.aliases.clone(),
                    vars: self.vars.clone(),
                    pending: Vec::new(),
                };
                let quiet = inner.out.problems.len();
                let mut as_commands = ctx.clone();
                as_commands.via.push(ARITHMETIC.to_string());
                inner.script(&format!("({})", a.expr.value), depth + 1, &as_commands);
                // What fails to parse as commands was real arithmetic, not an evasion.
                let mut i = quiet;
                while i < self.out.problems.len() {
                    if self.out.problems[i].id == "parse-error" {
                        self.out.problems.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            CompoundCommand::ArithmeticForClause(f) => {
                self.background_loop(&f.body.list);
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
                self.background_loop(&w.1.list);
                self.list(&w.0, depth, ctx);
                self.list(&w.1.list, depth, ctx);
            }
            CompoundCommand::Coprocess(c) => {
                self.command(&c.body, depth, ctx);
            }
        }
    }

    /// A loop whose body starts commands in the background (`while :; do sleep 9 & done`)
    /// may start processes without bound: the fork-bomb pattern without a function.
    fn background_loop(&mut self, body: &CompoundList) {
        if body
            .0
            .iter()
            .any(|item| matches!(item.1, ast::SeparatorOperator::Async))
        {
            self.problem(
                "background-loop",
                Decision::Ask,
                "a loop starts commands in the background on every pass, which can exhaust the process table".into(),
            );
        }
    }

    pub(super) fn arithmetic(&mut self, expr: &str, depth: usize, ctx: &Ctx) {
        let mut e = words::Evaluated::default();
        words::collect_arithmetic(expr, &mut e);
        self.absorb(e, depth, ctx);
    }
}
