//! Options of everyday tools that run a program or write a file (`tar --to-command`, `git -c
//! core.pager=...`, `rsync -e`, `ssh -o ProxyCommand=...`, `curl --output-dir`, `find
//! -fprint`, ...), from the policy's `program_options` table so an operator can read it. The
//! value of an option that runs a program is parsed and judged as a command line of its own (and
//! is at least `ask`, unless it names one of the entry's `plain_programs`); the value of an
//! option that writes a file is one more file the command writes, judged like a redirection;
//! the value of an option that makes the program follow instructions the guard cannot read (a
//! config or script file, commands in the tool's own language) is at least `ask`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::known::ProgramIndex;
use super::words::Word;
use super::wrappers::basename;

/// One row of the `program_options` table.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionSpec {
    /// Unique id, shown in every decision the entry takes part in.
    pub id: String,
    /// What these options do, shown to the model and the user.
    #[serde(default)]
    pub description: String,
    /// Program basenames (globs) the options belong to.
    pub program: Vec<String>,
    /// Only when one of these words (globs) appears among the arguments (`git rebase -x`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subcommands: Vec<String>,
    /// Options whose value is a command the program runs. Spellings: `--long` (also
    /// `--long=V` and abbreviations), `-x` (also `-xV` and at the end of a bundle), `-word` (a
    /// single-dash long option, as `find -fprint` or `-out=V`), `+` (a word starting with `+`), and `OPT
    /// KEY` for an option whose value is `KEY=V` or `KEY V` (`-c core.pager`, `-o
    /// ProxyCommand`; KEY is a case-insensitive glob).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<String>,
    /// Options whose value is a file the program writes (same spellings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<String>,
    /// Options whose value is a file of instructions or code in the program's own language
    /// (a config file, a debugger or editor command), which the guard cannot judge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interprets: Vec<String>,
    /// Letters of the program's short options that take a value, so that a bundle (`-xzf F`)
    /// is read the way the program reads it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub short_values: String,
    /// Programs a `runs` value may start with and be judged only as that command, without the
    /// `ask` floor (`rsync -e 'ssh -p 2222'`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plain_programs: Vec<String>,
    /// Commands the entry must take part in; checked when the policy loads.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Commands the entry must not take part in; checked when the policy loads.
    #[serde(default)]
    pub counter_examples: Vec<String>,
}

/// What an option's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Runs,
    Writes,
    Interprets,
}

/// One use of a listed option in a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionUse {
    /// Index of the entry in the policy's `program_options`.
    pub entry: usize,
    pub effect: Effect,
    /// The option as written in the policy (`-c core.pager`).
    pub option: String,
    /// Its value: the command run, the file written, the instructions followed.
    pub value: Word,
}

#[derive(Debug, Clone)]
enum Form {
    /// `--name`, with `=value` or the next word.
    Long(String),
    /// `-x`, alone, attached (`-xV`) or at the end of a bundle.
    Short(char),
    /// A single-dash word (`-fprint`) or `+` as a prefix.
    Word(String),
}

#[derive(Debug, Clone)]
struct Opt {
    spelling: String,
    form: Form,
    /// Lower-cased key glob the value must start with (`core.pager`), then `=` or a space.
    key: Option<super::lazy::LazyGlob>,
    effect: Effect,
}

#[derive(Debug, Clone)]
struct Entry {
    subcommands: Vec<super::lazy::LazyGlob>,
    opts: Vec<Opt>,
    short_values: String,
    plain_programs: Vec<String>,
}

/// The compiled table.
#[derive(Debug, Clone, Default)]
pub struct ProgramOptions {
    by_program: ProgramIndex,
    entries: Vec<Entry>,
}

impl ProgramOptions {
    /// Compiles the table; the error names the field and why.
    pub fn compile(specs: &[OptionSpec]) -> Result<ProgramOptions, (String, String)> {
        let mut out = ProgramOptions::default();
        for (i, s) in specs.iter().enumerate() {
            let field = |f: &str| format!("program_options[{i}].{f}");
            if s.program.is_empty() {
                return Err((field("program"), "name at least one program".into()));
            }
            for p in &s.program {
                out.by_program
                    .add(p, i)
                    .map_err(|m| (field("program"), m))?;
            }
            let mut opts = Vec::new();
            for (list, effect, name) in [
                (&s.runs, Effect::Runs, "runs"),
                (&s.writes, Effect::Writes, "writes"),
                (&s.interprets, Effect::Interprets, "interprets"),
            ] {
                for (j, o) in list.iter().enumerate() {
                    opts.push(
                        parse_opt(o, effect).map_err(|m| (field(&format!("{name}[{j}]")), m))?,
                    );
                }
            }
            if opts.is_empty() {
                return Err((field("runs"), "list at least one option".into()));
            }
            let subcommands = s
                .subcommands
                .iter()
                .map(|g| glob(g).map_err(|m| (field("subcommands"), m)))
                .collect::<Result<_, _>>()?;
            out.entries.push(Entry {
                subcommands,
                opts,
                short_values: s.short_values.clone(),
                plain_programs: s.plain_programs.clone(),
            });
        }
        Ok(out)
    }

    /// True when some entry lists options of `program` (a basename).
    pub fn covers(&self, program: &str) -> bool {
        self.by_program.contains(program)
    }

    /// Every listed option `argv` uses, with its value.
    pub fn find(&self, argv: &[Word]) -> Vec<OptionUse> {
        let Some(first) = argv.first() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in self.by_program.lookup(basename(&first.text)) {
            let Some(entry) = self.entries.get(e) else {
                continue;
            };
            let sub_ok = entry.subcommands.is_empty()
                || argv[1..]
                    .iter()
                    .any(|w| entry.subcommands.iter().any(|g| g.is_match(&w.text)));
            if sub_ok {
                entry.scan(e, argv, &mut out);
            }
        }
        out
    }

    /// True when a `runs` value starts with one of its entry's plain programs.
    pub fn is_plain(&self, u: &OptionUse) -> bool {
        let Some(entry) = self.entries.get(u.entry) else {
            return false;
        };
        let first = u.value.text.split_whitespace().next().unwrap_or("");
        !u.value.dynamic && entry.plain_programs.iter().any(|p| basename(first) == p)
    }
}

impl Entry {
    fn scan(&self, entry: usize, argv: &[Word], out: &mut Vec<OptionUse>) {
        let mut i = 1;
        while i < argv.len() {
            let w = &argv[i];
            let t = w.text.as_str();
            if t == "--" {
                break;
            }
            let mut consumed_next = false;
            for o in &self.opts {
                let (value, next) = match &o.form {
                    Form::Long(name) => long_value(t, name, argv.get(i + 1)),
                    Form::Word(word) if word == "+" => (
                        t.strip_prefix('+')
                            .filter(|v| !v.is_empty())
                            .map(|v| v.to_string()),
                        false,
                    ),
                    Form::Word(word) => match t.strip_prefix(word.as_str()) {
                        Some("") => (argv.get(i + 1).map(|n| n.text.clone()), true),
                        // `terraform plan -out=FILE`
                        Some(rest) if rest.starts_with('=') => (Some(rest[1..].to_string()), false),
                        _ => (None, false),
                    },
                    Form::Short(c) => self.short_value(t, *c, argv.get(i + 1)),
                };
                let Some(value) = value else {
                    continue;
                };
                let dynamic = w.dynamic || (next && argv.get(i + 1).is_some_and(|n| n.dynamic));
                let Some(value) = keyed(o, &value) else {
                    continue;
                };
                consumed_next |= next;
                out.push(OptionUse {
                    entry,
                    effect: o.effect,
                    option: o.spelling.clone(),
                    value: Word {
                        text: value,
                        dynamic,
                    },
                });
            }
            i += if consumed_next { 2 } else { 1 };
        }
    }

    /// The value of short option `c` in word `t`: attached, or the next word when `c` ends the
    /// bundle. Letters before it must be flags without a value.
    fn short_value(&self, t: &str, c: char, next: Option<&Word>) -> (Option<String>, bool) {
        if t.starts_with("--") || !t.starts_with('-') || t.len() < 2 {
            return (None, false);
        }
        for (k, ch) in t[1..].char_indices() {
            if ch == c {
                let rest = &t[1 + k + ch.len_utf8()..];
                return if rest.is_empty() {
                    (next.map(|n| n.text.clone()), true)
                } else {
                    (Some(rest.to_string()), false)
                };
            }
            if !ch.is_ascii_alphanumeric() || self.short_values.contains(ch) {
                break;
            }
        }
        (None, false)
    }
}

/// `--name=V`, `--name V`, or an abbreviation of at least two letters (getopt_long and git
/// accept any unambiguous prefix; a prefix that is ambiguous is refused by the program).
fn long_value(t: &str, name: &str, next: Option<&Word>) -> (Option<String>, bool) {
    let Some(given) = t.strip_prefix("--") else {
        return (None, false);
    };
    let want = name.trim_start_matches('-');
    let (key, attached) = match given.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (given, None),
    };
    if key.is_empty() || !(key == want || (key.len() >= 2 && want.starts_with(key))) {
        return (None, false);
    }
    match attached {
        Some(v) => (Some(v.to_string()), false),
        None => (next.map(|n| n.text.clone()), true),
    }
}

/// For a keyed option, the part of `value` after its key (`core.pager=less` -> `less`), when
/// the key matches; the whole value otherwise.
fn keyed(o: &Opt, value: &str) -> Option<String> {
    let Some(key) = &o.key else {
        return Some(value.to_string());
    };
    let trimmed = value.trim_start();
    let at = trimmed.find(['=', ' ', '\t']).unwrap_or(trimmed.len());
    let (k, rest) = trimmed.split_at(at);
    key.is_match(k.to_ascii_lowercase())
        .then(|| rest.trim_start_matches(['=', ' ', '\t']).to_string())
}

fn parse_opt(spelling: &str, effect: Effect) -> Result<Opt, String> {
    let mut parts = spelling.split_whitespace();
    let opt = parts.next().ok_or("an empty option")?;
    let key = parts
        .next()
        .map(|k| glob(&k.to_ascii_lowercase()))
        .transpose()?;
    if parts.next().is_some() {
        return Err(format!("`{spelling}`: give an option and at most one key"));
    }
    let form = if let Some(long) = opt.strip_prefix("--") {
        Form::Long(long.to_string())
    } else if opt == "+" {
        Form::Word(opt.to_string())
    } else if let Some(short) = opt.strip_prefix('-') {
        let mut chars = short.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Form::Short(c),
            (Some(_), Some(_)) => Form::Word(opt.to_string()),
            (None, _) => return Err(format!("`{spelling}`: `-` alone is not an option")),
        }
    } else {
        return Err(format!(
            "`{spelling}`: an option starts with `-`, `--` or is `+`"
        ));
    };
    Ok(Opt {
        spelling: spelling.to_string(),
        form,
        key,
        effect,
    })
}

fn glob(p: &str) -> Result<super::lazy::LazyGlob, String> {
    globset::Glob::new(p)
        .map(super::lazy::LazyGlob::new)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
