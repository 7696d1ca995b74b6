//! Config files: the command line of a subcommand that has a `--conf` option (`serve`,
//! `standby`) completed from a file in Core Lightning's format, checked against clap's own
//! definition of that subcommand, so that every flag, present or future, can be set in a file
//! under its own name and no option is described twice.
//!
//! Which file: the one `--conf` names (it must exist), else `DATA_DIR/config` when it exists
//! (`DATA_DIR` from `--data-dir`, else the default), as Core Lightning reads `--conf` instead of
//! its default file. The format: one `name=value` a line, or a bare `name` for a switch; `name`
//! is the long flag without `--`; blank lines and lines starting with `#` are ignored;
//! whitespace around a line, a name and a value is trimmed, and everything after the first `=`
//! is the value (`#` included).
//!
//! The file's options are given to clap before the command line's: a flag overrides the file
//! (a single-valued option takes its last value; this module lets such a subcommand take a flag
//! twice, as Core Lightning does), and a repeatable option's flags add to the file's values,
//! as Core Lightning's do. An unknown option, a bad value, a switch with a value or an option
//! without one, a single-valued option twice in the file, `conf` in a file and `data-dir` in
//! `DATA_DIR/config` (it is found through it) stop the parse, naming the file and the line.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue};
use clap::{Arg, ArgAction, ArgMatches, Command};

/// The id of the option that names a config file: a subcommand that has it takes one.
pub const CONF: &str = "conf";
/// The id of the data dir option, in which `config` is read when no `--conf` is given.
pub const DATA_DIR: &str = "data_dir";
/// The config file's name in the data dir.
pub const FILE_NAME: &str = "config";

/// One option line of a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Its number in the file, from 1.
    pub number: usize,
    /// The option's name (a long flag without `--`).
    pub name: String,
    /// What follows the `=`, if there is one.
    pub value: Option<String>,
}

/// Why the command line and its config file do not parse.
#[derive(Debug)]
pub enum Error {
    /// The command line's own error (or its help or version), for clap to report.
    Clap(clap::Error),
    /// The config file's: the file, the line to blame if there is one, and what is wrong.
    File {
        /// The config file.
        path: PathBuf,
        /// The line, from 1.
        line: Option<usize>,
        /// What is wrong.
        what: String,
    },
    /// The program's definition does not have what this module needs (a bug, caught by tests).
    Definition(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Clap(e) => f.write_str(&clap_words(e)),
            Error::File {
                path,
                line: Some(n),
                what,
            } => write!(f, "{}:{n}: {what}", path.display()),
            Error::File {
                path,
                line: None,
                what,
            } => write!(f, "{}: {what}", path.display()),
            Error::Definition(what) => write!(f, "command line definition: {what}"),
        }
    }
}

impl std::error::Error for Error {}

/// The config file read: where it is, and whether `--conf` named it.
#[derive(Clone, Debug)]
struct Source {
    path: PathBuf,
    named: bool,
}

impl Source {
    /// An error of this file, at `line` if given.
    fn error(&self, line: Option<usize>, what: String) -> Error {
        Error::File {
            path: self.path.clone(),
            line,
            what,
        }
    }
}

/// One option of the file, as it goes to clap.
#[derive(Debug)]
struct FileArg {
    /// Its line.
    line: usize,
    /// The option's long name (not an alias).
    long: String,
    /// `--long=value` or `--long`.
    arg: OsString,
}

/// Parses `argv` (the program's name first) into `T`, with the config file of its subcommand
/// when that subcommand has a `--conf` option. The file read, if any, is then `T`'s `conf`.
///
/// # Errors
/// [`Error::Clap`] for the command line's own errors, [`Error::File`] for the file's.
pub fn parse<T: clap::Parser>(argv: impl IntoIterator<Item = OsString>) -> Result<T, Error> {
    // A flag of a subcommand that takes a file may be given twice: the last counts.
    let cmd = T::command().mut_subcommands(|c| match conf_long(&c) {
        Some(_) => c.args_override_self(true),
        None => c,
    });
    let (argv, file) = with_file(&cmd, argv.into_iter().collect())?;
    match cmd.try_get_matches_from(argv) {
        Ok(m) => T::from_arg_matches(&m).map_err(Error::Clap),
        Err(e) => Err(match &file {
            Some((args, source)) => blame(e, args, source),
            None => Error::Clap(e),
        }),
    }
}

/// A config file's options, as given to clap, and the file.
type Found = (Vec<FileArg>, Source);

/// `argv` with the options of its subcommand's config file just after the subcommand, and
/// those options; `argv` as it is if its subcommand takes no file or has none.
fn with_file(cmd: &Command, argv: Vec<OsString>) -> Result<(Vec<OsString>, Option<Found>), Error> {
    // The command line alone first, its required options relaxed (they may be in the file):
    // its own errors come first, and it says which subcommand, file and data dir.
    let alone = cmd
        .clone()
        .mut_subcommands(|s| s.mut_args(|a| a.required(false)))
        .try_get_matches_from(&argv)
        .map_err(Error::Clap)?;
    let Some((name, sub)) = alone.subcommand() else {
        return Ok((argv, None));
    };
    let Some((sub_cmd, conf_long)) = cmd
        .find_subcommand(name)
        .and_then(|c| Some((c, conf_long(c)?)))
    else {
        return Ok((argv, None));
    };
    let Some((source, text)) = read(sub)? else {
        return Ok((argv, None));
    };
    let lines = lines(&text).map_err(|(n, what)| source.error(Some(n), what))?;
    let file_args = file_args(&lines, sub_cmd, &source, cmd.get_name())?;
    let mut spliced: Vec<OsString> = file_args.iter().map(|a| a.arg.clone()).collect();
    if !source.named {
        // So that `conf` names the file read in every case.
        spliced.push(long_arg(&conf_long, Some(source.path.as_os_str())));
    }
    Ok((splice(argv, name, spliced), Some((file_args, source))))
}

/// The long flag of `cmd`'s [`CONF`] option, if it has one (then it takes a config file).
fn conf_long(cmd: &Command) -> Option<String> {
    let conf = cmd.get_arguments().find(|a| a.get_id() == CONF)?;
    conf.get_long().map(str::to_owned)
}

/// The config file of a subcommand whose command line matched `sub`, and its text: `--conf`'s
/// (which must be readable), else `DATA_DIR/config` if it exists, else none.
fn read(sub: &ArgMatches) -> Result<Option<(Source, String)>, Error> {
    let source = match path_arg(sub, CONF)? {
        Some(path) => Source { path, named: true },
        None => Source {
            path: path_arg(sub, DATA_DIR)?
                .unwrap_or_else(crate::config::default_data_dir)
                .join(FILE_NAME),
            named: false,
        },
    };
    match std::fs::read_to_string(&source.path) {
        Ok(text) => Ok(Some((source, text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !source.named => Ok(None),
        Err(e) => Err(source.error(None, format!("cannot read the config file: {e}"))),
    }
}

/// The path the option `id` was given, if it was; none if the subcommand has no such option.
fn path_arg(m: &ArgMatches, id: &str) -> Result<Option<PathBuf>, Error> {
    match m.try_get_one::<PathBuf>(id) {
        Ok(path) => Ok(path.cloned()),
        Err(clap::parser::MatchesError::UnknownArgument { .. }) => Ok(None),
        Err(e) => Err(Error::Definition(format!("option id '{id}': {e}"))),
    }
}

/// The option lines of a config file's `text`: blank lines and `#` comments skipped, each line
/// trimmed, split at its first `=`, the name and value trimmed.
///
/// # Errors
/// The line number and what is wrong, for a line with no name before its `=`.
pub fn lines(text: &str) -> Result<Vec<Line>, (usize, String)> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((name, value)) => (name.trim_end(), Some(value.trim_start().to_owned())),
            None => (line, None),
        };
        if name.is_empty() {
            return Err((i + 1, "no option name before '='".into()));
        }
        lines.push(Line {
            number: i + 1,
            name: name.to_owned(),
            value,
        });
    }
    Ok(lines)
}

/// The file's `lines` as arguments of the subcommand `cmd` (of the program `program`), each
/// checked alone: a known option, allowed in this file, given a value if and only if it takes
/// one, set once unless repeatable, and a value clap accepts.
fn file_args(
    lines: &[Line],
    cmd: &Command,
    source: &Source,
    program: &str,
) -> Result<Vec<FileArg>, Error> {
    let mut one_line = cmd.clone().mut_args(|a| a.required(false));
    let command = format!("`{program} {}`", cmd.get_name());
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut args = Vec::with_capacity(lines.len());
    for line in lines {
        let at = |what: String| source.error(Some(line.number), what);
        let opt = option(cmd, &command, line, source.named).map_err(at)?;
        let long = opt.get_long().unwrap_or_default().to_owned();
        if !matches!(opt.get_action(), ArgAction::Append | ArgAction::Count) {
            if let Some(first) = seen.insert(long.clone(), line.number) {
                return Err(at(format!("'{long}' is already set on line {first}")));
            }
        }
        let arg = long_arg(&long, line.value.as_deref().map(OsStr::new));
        one_line
            .try_get_matches_from_mut([OsString::from(cmd.get_name()), arg.clone()])
            .map_err(|e| at(renamed(&e, &long)))?;
        args.push(FileArg {
            line: line.number,
            long,
            arg,
        });
    }
    Ok(args)
}

/// The option of `cmd` (called `command` in errors) that `line` names, if the line may set it:
/// `named` says whether the file was named by `--conf` (else it is the data dir's).
fn option<'c>(
    cmd: &'c Command,
    command: &str,
    line: &Line,
    named: bool,
) -> Result<&'c Arg, String> {
    let name = line.name.as_str();
    let opt = cmd
        .get_arguments()
        .filter(|a| !is_help_or_version(a.get_action()))
        .find(|a| {
            a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name))
        })
        .ok_or_else(|| format!("unknown option '{name}' (not an option of {command})"))?;
    if opt.get_id() == CONF {
        return Err(format!("'{name}' cannot be set in a config file"));
    }
    if opt.get_id() == DATA_DIR && !named {
        return Err(format!(
            "'{name}' cannot be set in the data dir's own config file (name a file that sets it with --conf)"
        ));
    }
    match (opt.get_action().takes_values(), &line.value) {
        (true, None) => Err(format!("'{name}' needs a value: '{name}=VALUE'")),
        (false, Some(_)) => Err(format!(
            "'{name}' is a switch and takes no value: write '{name}' alone"
        )),
        _ => Ok(opt),
    }
}

/// Whether an argument is clap's own `--help` or `--version`.
fn is_help_or_version(action: &ArgAction) -> bool {
    matches!(
        action,
        ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
    )
}

/// `--long=value`, or `--long` for a switch.
fn long_arg(long: &str, value: Option<&OsStr>) -> OsString {
    let mut arg = OsString::from(format!("--{long}"));
    if let Some(v) = value {
        arg.push("=");
        arg.push(v);
    }
    arg
}

/// `argv` with `file_args` just after the subcommand `name`, before the command line's own
/// options (so those override them).
fn splice(argv: Vec<OsString>, name: &str, file_args: Vec<OsString>) -> Vec<OsString> {
    let at = argv
        .iter()
        .skip(1)
        .position(|a| a == name)
        .map_or(argv.len(), |i| i + 2);
    let mut out = argv;
    out.splice(at..at, file_args);
    out
}

/// The combined parse's error `e`, blamed on the file's line when it names an option that came
/// from the file (a conflict between the file and a flag, say); else the command line's.
fn blame(e: clap::Error, file_args: &[FileArg], source: &Source) -> Error {
    let named: Vec<String> = [ContextKind::InvalidArg, ContextKind::PriorArg]
        .into_iter()
        .flat_map(|kind| match e.get(kind) {
            Some(ContextValue::String(s)) => vec![s.clone()],
            Some(ContextValue::Strings(v)) => v.clone(),
            _ => vec![],
        })
        .collect();
    let from_file = named.iter().find_map(|n| {
        let long = n.trim_start_matches('-').split([' ', '=']).next()?;
        file_args.iter().find(|a| a.long == long)
    });
    match from_file {
        Some(a) => source.error(Some(a.line), clap_words(&e)),
        None => Error::Clap(e),
    }
}

/// clap's message for `e` (see [`clap_words`]), the option it is about named `long` as in the
/// file, not as clap names it (`'--cltv-final <CLTV_FINAL>'`).
fn renamed(e: &clap::Error, long: &str) -> String {
    let words = clap_words(e);
    match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => words.replace(&format!("'{s}'"), &format!("'{long}'")),
        _ => words,
    }
}

/// clap's message for `e` in one line: its first paragraph without the `error: ` prefix (no
/// usage, no tip).
fn clap_words(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.split("\n\n").next().unwrap_or_default();
    let words: Vec<&str> = first.lines().map(str::trim).collect();
    words
        .join(" ")
        .trim_start_matches("error: ")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use std::path::Path;

    /// A program shaped as `invoiced`: a subcommand with `--conf` and `--data-dir`, one without.
    #[derive(clap::Parser, Debug)]
    #[command(name = "prog")]
    struct Prog {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(clap::Args, Debug)]
    struct Opts {
        #[arg(long)]
        conf: Option<PathBuf>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long, default_value = "info")]
        level: String,
        #[arg(long, value_parser = clap::value_parser!(u16))]
        cltv_final: Option<u16>,
        #[arg(long)]
        switch: bool,
        #[arg(long, conflicts_with = "switch")]
        switch_file: Option<PathBuf>,
        #[arg(long = "url")]
        urls: Vec<String>,
    }

    #[derive(clap::Subcommand, Debug)]
    enum Sub {
        Serve(Opts),
        Standby {
            #[command(flatten)]
            opts: Opts,
            #[arg(long)]
            from: String,
        },
        Other {
            #[arg(long)]
            data_dir: Option<PathBuf>,
        },
    }

    /// A data dir with `config` holding `text` (none if `None`).
    fn data_dir(text: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if let Some(t) = text {
            std::fs::write(dir.path().join(FILE_NAME), t).unwrap();
        }
        dir
    }

    fn run(dir: &Path, args: &[&str]) -> Result<Prog, Error> {
        let mut argv: Vec<OsString> = vec!["prog".into(), args[0].into(), "--data-dir".into()];
        argv.push(dir.as_os_str().to_owned());
        argv.extend(args[1..].iter().map(OsString::from));
        parse::<Prog>(argv)
    }

    fn serve(p: Prog) -> Opts {
        match p.command {
            Sub::Serve(o) => o,
            other => panic!("not serve: {other:?}"),
        }
    }

    /// The message of a file error, checked to be at `line` of the data dir's config.
    fn file_error(e: Error, dir: &Path, line: usize) -> String {
        match e {
            Error::File {
                path,
                line: Some(n),
                what,
            } => {
                assert_eq!(path, dir.join(FILE_NAME));
                assert_eq!(n, line, "{what}");
                what
            }
            other => panic!("not a file error at a line: {other:?}"),
        }
    }

    #[test]
    fn lines_skip_blanks_and_comments_and_trim() {
        let text = "# a comment\n\n  network = regtest \r\n\tswitch\n  # indented\nurl=http://h/?a=b#c\nempty=\n";
        let got = lines(text).unwrap();
        let want = [
            (3, "network", Some("regtest")),
            (4, "switch", None),
            (6, "url", Some("http://h/?a=b#c")),
            (7, "empty", Some("")),
        ];
        assert_eq!(got.len(), want.len());
        for (l, (n, name, value)) in got.iter().zip(want) {
            assert_eq!(
                (l.number, l.name.as_str(), l.value.as_deref()),
                (n, name, value)
            );
        }
        assert_eq!(lines(" = x\n").unwrap_err().0, 1);
    }

    proptest! {
        /// Any `name=value` line, among blanks and comments, reads back as its name and value
        /// at its line number.
        #[test]
        fn name_value_lines_round_trip(
            entries in prop::collection::vec(
                ("[a-z][a-z0-9-]{0,20}", "([!-~]([ -~]*[!-~])?)?", any::<bool>()),
                1..12,
            )
        ) {
            let mut text = String::new();
            let mut want = Vec::new();
            for (name, value, comment_before) in &entries {
                if *comment_before {
                    text.push_str("# note = not an option\n\n");
                }
                text.push_str(&format!("{name}={value}\n"));
                want.push((text.lines().count(), name.clone(), Some(value.clone())));
            }
            let got: Vec<_> = lines(&text)
                .unwrap()
                .into_iter()
                .map(|l| (l.number, l.name, l.value))
                .collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn the_data_dirs_config_sets_options_and_flags_override_it() {
        let dir = data_dir(Some("level=debug\ncltv-final=40\nswitch\nurl=a\nurl=b\n"));
        let o = serve(run(dir.path(), &["serve"]).unwrap());
        assert_eq!(
            (o.level.as_str(), o.cltv_final, o.switch),
            ("debug", Some(40), true)
        );
        assert_eq!(o.urls, ["a", "b"]);
        assert_eq!(
            o.conf,
            Some(dir.path().join(FILE_NAME)),
            "conf names the file read"
        );
        let o = serve(
            run(
                dir.path(),
                &[
                    "serve",
                    "--cltv-final",
                    "50",
                    "--url",
                    "c",
                    "--level=warn",
                    "--switch",
                ],
            )
            .unwrap(),
        );
        assert_eq!(
            (o.level.as_str(), o.cltv_final, o.switch),
            ("warn", Some(50), true)
        );
        assert_eq!(
            o.urls,
            ["a", "b", "c"],
            "a repeatable option's flags add to the file's"
        );
    }

    #[test]
    fn without_a_file_the_command_line_alone_counts_and_a_flag_may_be_given_twice() {
        let dir = data_dir(None);
        let o = serve(run(dir.path(), &["serve", "--cltv-final=1", "--cltv-final=2"]).unwrap());
        assert_eq!((o.cltv_final, o.conf), (Some(2), None));
    }

    #[test]
    fn conf_names_the_file_instead_of_the_data_dirs() {
        let dir = data_dir(Some("level=debug\n"));
        let other = dir.path().join("other.conf");
        std::fs::write(&other, "cltv-final=33\ndata-dir=/elsewhere\n").unwrap();
        let o = serve(run(dir.path(), &["serve", "--conf", other.to_str().unwrap()]).unwrap());
        assert_eq!((o.level.as_str(), o.cltv_final), ("info", Some(33)));
        assert_eq!(
            o.data_dir.as_deref(),
            Some(dir.path()),
            "--data-dir overrides the file's"
        );
        let argv = ["prog", "serve", "--conf", other.to_str().unwrap()].map(OsString::from);
        let o = serve(parse::<Prog>(argv).unwrap());
        assert_eq!(o.data_dir, Some(PathBuf::from("/elsewhere")));
    }

    #[test]
    fn a_missing_conf_file_is_an_error_naming_it() {
        let dir = data_dir(None);
        let missing = dir.path().join("nope.conf");
        let e = run(dir.path(), &["serve", "--conf", missing.to_str().unwrap()]).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("{}: cannot read", missing.display())),
            "{text}"
        );
    }

    #[test]
    fn unknown_options_bad_values_and_misshapen_lines_name_the_line() {
        let cases = [
            ("level=x\nbogus=1\n", 2, "unknown option 'bogus' (not an option of `prog serve`)"),
            ("\n\ncltv-final=x\n", 3, "invalid value 'x' for 'cltv-final': invalid digit found in string"),
            ("cltv-final=70000\n", 1, "invalid value '70000' for 'cltv-final': 70000 is not in 0..=65535"),
            ("cltv-final\n", 1, "'cltv-final' needs a value: 'cltv-final=VALUE'"),
            ("switch=yes\n", 1, "'switch' is a switch and takes no value: write 'switch' alone"),
            ("level=a\n# again\nlevel=b\n", 3, "'level' is already set on line 1"),
            ("conf=/x\n", 1, "'conf' cannot be set in a config file"),
            ("data-dir=/x\n", 1, "'data-dir' cannot be set in the data dir's own config file (name a file that sets it with --conf)"),
            ("help\n", 1, "unknown option 'help' (not an option of `prog serve`)"),
            ("--level=x\n", 1, "unknown option '--level' (not an option of `prog serve`)"),
            ("from=pg\n", 1, "unknown option 'from' (not an option of `prog serve`)"),
        ];
        for (text, line, want) in cases {
            let dir = data_dir(Some(text));
            let e = run(dir.path(), &["serve"]).unwrap_err();
            assert_eq!(file_error(e, dir.path(), line), want, "{text:?}");
        }
    }

    #[test]
    fn a_conflict_between_the_file_and_a_flag_names_the_files_line() {
        let dir = data_dir(Some("level=x\nswitch-file=/s\n"));
        let e = run(dir.path(), &["serve", "--switch"]).unwrap_err();
        let what = file_error(e, dir.path(), 2);
        assert!(what.contains("cannot be used with"), "{what}");
    }

    #[test]
    fn the_command_lines_own_errors_are_clap_s() {
        let dir = data_dir(Some("bogus=1\n"));
        // The command line is checked before the file is read.
        let e = run(dir.path(), &["serve", "--cltv-final", "x"]).unwrap_err();
        assert!(matches!(e, Error::Clap(_)), "{e:?}");
        let dir = data_dir(Some("level=x\n"));
        let e = run(dir.path(), &["standby"]).unwrap_err();
        match e {
            Error::Clap(c) => assert_eq!(c.kind(), clap::error::ErrorKind::MissingRequiredArgument),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_required_option_may_come_from_the_file_of_a_subcommand_with_more_options() {
        let dir = data_dir(Some("from=pg\nswitch\n"));
        match run(dir.path(), &["standby"]).unwrap().command {
            Sub::Standby { opts, from } => assert_eq!((opts.switch, from.as_str()), (true, "pg")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_subcommand_without_conf_reads_no_file() {
        let dir = data_dir(Some("bogus=1\n"));
        assert!(matches!(
            run(dir.path(), &["other"]).unwrap().command,
            Sub::Other { .. }
        ));
    }
}
