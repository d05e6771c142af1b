//! README's configuration table against `--help`: neither may drift from the other.
//!
//! `--help` is rendered by clap from [`Cli`]'s arguments, so the test reads the environment
//! variables and defaults from that same command. Every variable the gateway takes must have a
//! row in README's "Configuration" table, every variable in the table must exist, and where both
//! state a default they must be the same value (durations compared as durations: `60s` is `1m`).
//!
//! The simulator subcommand's `PROVE_SIMULATOR_*` variables are left out: README describes the
//! simulator in prose, with no table of settings to check them against.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use clap::CommandFactory;
use prove_gateway::config::Cli;

const README: &str = include_str!("../README.md");

/// What a row (or `--help`) says about a variable's default.
#[derive(Debug, Clone, PartialEq)]
enum Stated {
    /// No default: empty, or prose such as "unset: embedded simulator".
    None,
    /// A duration, compared by value.
    Duration(Duration),
    /// Anything else, compared as text.
    Text(String),
}

impl Stated {
    fn of(raw: &str) -> Self {
        match humantime::parse_duration(raw) {
            Ok(duration) => Self::Duration(duration),
            Err(_) => Self::Text(raw.to_owned()),
        }
    }
}

/// The gateway's variables and defaults as `--help` shows them (the subcommand's are not here:
/// `get_arguments` lists only the top-level command's, which flattens the gateway's).
fn help_variables() -> BTreeMap<String, Stated> {
    let command = Cli::command();
    let help = Cli::command().render_long_help().to_string();
    let mut variables = BTreeMap::new();
    for arg in command.get_arguments() {
        let Some(env) = arg.get_env() else { continue };
        let name = env.to_string_lossy().into_owned();
        // The variable as the user reads it in `--help`, not only in clap's model.
        assert!(
            help.contains(&format!("[env: {name}")),
            "--help does not show {name}"
        );
        let default = match arg.get_default_values() {
            [] => Stated::None,
            [one] => Stated::of(&one.to_string_lossy()),
            many => panic!("{name}: several defaults {many:?}"),
        };
        variables.insert(name, default);
    }
    variables
}

/// The rows of the table under `## Configuration`: cells of each line, header and rule skipped.
fn table_rows(readme: &str) -> Vec<Vec<String>> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Configuration\n"))
        .expect("README has a Configuration section");
    section
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .map(|line| {
            // No cell of the table holds a `|`, so splitting on it is exact.
            line.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect()
}

/// The text between backticks in `cell`, in order.
fn quoted(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// The table's variables and defaults. A row may name several variables (`A`, `B` or `A` / `B`)
/// with one default each written `x` / `y`, or one default for the first variable only.
/// A row "each of the N above + `SUFFIX`" stands for the N variables listed just before it with
/// the suffix added (the `_FILE` variants of the credentials).
fn table_variables(readme: &str) -> BTreeMap<String, Stated> {
    let mut variables = BTreeMap::new();
    let mut listed: Vec<String> = Vec::new();
    for row in table_rows(readme) {
        let [names, default, _meaning] = row.as_slice() else {
            panic!("a configuration row has not three cells: {row:?}")
        };
        if let Some(rest) = names.strip_prefix("each of the ") {
            let count = words_to_number(rest.split(' ').next().unwrap_or_default());
            let [suffix] = quoted(rest)[..] else {
                panic!("{names}: expected one suffix in backticks")
            };
            assert!(default.is_empty(), "{names}: a default for a family");
            let previous = listed[listed.len() - count..].to_vec();
            for name in previous {
                variables.insert(format!("{name}{suffix}"), Stated::None);
            }
            continue;
        }
        let names = quoted(names);
        assert!(!names.is_empty(), "a row names no variable: {row:?}");
        let defaults: Vec<Stated> = if default.starts_with('`') {
            quoted(default).into_iter().map(Stated::of).collect()
        } else {
            Vec::new()
        };
        assert!(
            defaults.len() <= 1 || defaults.len() == names.len(),
            "{names:?}: {} defaults for {} variables",
            defaults.len(),
            names.len()
        );
        for (i, name) in names.iter().enumerate() {
            let default = defaults.get(i).cloned().unwrap_or(Stated::None);
            assert!(
                variables.insert((*name).to_owned(), default).is_none(),
                "{name} has two rows"
            );
            listed.push((*name).to_owned());
        }
    }
    variables
}

fn words_to_number(word: &str) -> usize {
    match word {
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        other => other
            .parse()
            .unwrap_or_else(|_| panic!("not a count: {other}")),
    }
}

#[test]
fn readme_configuration_table_matches_help() {
    let help = help_variables();
    let table = table_variables(README);
    let help_names: BTreeSet<&String> = help.keys().collect();
    let table_names: BTreeSet<&String> = table.keys().collect();
    let undocumented: Vec<_> = help_names.difference(&table_names).collect();
    let unknown: Vec<_> = table_names.difference(&help_names).collect();
    assert!(
        undocumented.is_empty(),
        "in --help but not in README's configuration table: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "in README's configuration table but not in --help: {unknown:?}"
    );
    let disagreeing: Vec<String> = help
        .iter()
        .filter(|(name, from_help)| {
            let from_readme = &table[*name];
            match (from_help, from_readme) {
                // README may say "unset" in prose where --help shows nothing.
                (Stated::None, Stated::None) => false,
                // A default only one side states is drift too.
                _ => *from_help != from_readme,
            }
        })
        .map(|(name, from_help)| format!("{name}: --help {from_help:?}, README {:?}", table[name]))
        .collect();
    assert!(
        disagreeing.is_empty(),
        "defaults differ:\n{}",
        disagreeing.join("\n")
    );
}

/// The table parser itself: a row it cannot read would let drift through unseen.
#[test]
fn the_table_reader_understands_each_kind_of_row() {
    let readme = "intro\n## Configuration\n\ntext\n\n| variable | default | meaning |\n|---|---|---|\n\
        | `A` | `60s` | a |\n\
        | `B`, `C` | | pair |\n\
        | each of the two above + `_FILE` | | files |\n\
        | `D` / `E` | `100ms` / `x` | two |\n\
        | `F` | unset: none | prose |\n\n## Next\n| `Z` | | other table |\n";
    let table = table_variables(readme);
    assert_eq!(table["A"], Stated::Duration(Duration::from_secs(60)));
    assert_eq!(table["A"], Stated::of("1m"));
    assert_eq!(table["B_FILE"], Stated::None);
    assert_eq!(table["C_FILE"], Stated::None);
    assert_eq!(table["D"], Stated::Duration(Duration::from_millis(100)));
    assert_eq!(table["E"], Stated::Text("x".into()));
    assert_eq!(table["F"], Stated::None);
    assert!(!table.contains_key("A_FILE"));
    assert!(!table.contains_key("Z"));
}
