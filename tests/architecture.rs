//! The architecture test: dependencies between the gateway's modules run one way.
//!
//! From the top: `main` → `server` → `grpc` → `prove` → `resilience` → `store` → `telemetry`.
//! `grpc` may also use `callers` and `events`, which sit beside `prove` and use only what lies
//! below it. `config` is the root of configuration: it builds each module's settings type, and
//! no module imports it. The simulator stands in for Prove and shares nothing with the gateway.
//!
//! The test reads `src/` as text (comments and string literals removed) and checks every
//! `crate::…` path against the rules below. A module that is not in the rules fails the test
//! too, so a new module has to take its place in the layers before it can land.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One module and the modules it may import, with the reason for the rule.
struct Rule {
    module: &'static str,
    may_use: &'static [&'static str],
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        module: "main",
        may_use: &["*"],
        why: "the binary and the crate map wire everything together",
    },
    Rule {
        module: "config",
        may_use: &[
            "server",
            "grpc",
            "callers",
            "events",
            "prove",
            "resilience",
            "store",
            "telemetry",
            "simulator",
        ],
        why: "configuration imports the settings types of the domain, never the reverse",
    },
    Rule {
        module: "server",
        may_use: &[
            "grpc",
            "callers",
            "events",
            "prove",
            "resilience",
            "store",
            "telemetry",
            "simulator",
        ],
        why: "the server assembles the services and starts the embedded simulator",
    },
    Rule {
        module: "grpc",
        may_use: &[
            "callers",
            "events",
            "prove",
            "resilience",
            "store",
            "telemetry",
        ],
        why: "the gRPC edge speaks to Prove through `prove` and knows nothing of the server",
    },
    Rule {
        module: "callers",
        may_use: &["store", "telemetry"],
        why: "who may call is decided without knowing gRPC or Prove",
    },
    Rule {
        module: "events",
        may_use: &["store", "telemetry"],
        why: "identity events are stored and streamed without knowing gRPC or Prove's client",
    },
    Rule {
        module: "prove",
        may_use: &["resilience", "store", "telemetry"],
        why: "Prove's API rides on the transport plumbing and knows nothing of gRPC",
    },
    Rule {
        module: "resilience",
        may_use: &["store", "telemetry"],
        why: "transport plumbing knows no Prove JSON and no gRPC",
    },
    Rule {
        module: "store",
        may_use: &["telemetry"],
        why: "Redis and the embedded store are shared by the layers above",
    },
    Rule {
        module: "telemetry",
        may_use: &[],
        why: "telemetry takes plain labels and knows no domain type",
    },
    Rule {
        module: "simulator",
        may_use: &[],
        why: "the simulator stands in for Prove; sharing code would hide the gateway's bugs",
    },
];

/// The module a file under `src/` belongs to: its first path segment, without `.rs`.
fn module_of(relative: &Path) -> String {
    let first = relative
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = first.strip_suffix(".rs").unwrap_or(&first);
    match name {
        "lib" | "main" => "main".to_owned(),
        n => n.to_owned(),
    }
}

/// Rust source with comments and string and char literals blanked out, line breaks kept, so
/// that paths found in it are real code and their line numbers still match the file.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !chars[..i]
                .last()
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                match chars.get(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some(_) => j += 1,
                }
            }
            out.extend(chars[i..j.min(chars.len())].iter().map(|c| blank(*c)));
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A char literal ('"', '\n'); a lifetime ('a) has no closing quote two on.
            let mut j = i + 1;
            if chars.get(j) == Some(&'\\') {
                j += 1;
            }
            while j < chars.len() && chars[j] != '\'' {
                j += 1;
            }
            out.extend(chars[i..(j + 1).min(chars.len())].iter().map(|c| blank(*c)));
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The top-level modules named by `crate::…` paths in `code`, with their line numbers: the
/// `a` of `crate::a::b`, and each `a` of `crate::{a, b::c}`.
fn crate_imports(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (index, _) in code.match_indices("crate") {
        let before = code[..index].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = code[index + "crate".len()..].trim_start();
        let Some(rest) = rest.strip_prefix("::") else {
            continue;
        };
        let line = code[..index].matches('\n').count() + 1;
        let rest = rest.trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // Split the group's top level at commas; each item starts with a module name.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push((line, leading_ident(&item)));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.push((line, leading_ident(&item)));
        } else {
            found.push((line, leading_ident(rest)));
        }
    }
    found.retain(|(_, name)| !name.is_empty() && name != "self");
    found
}

fn leading_ident(text: &str) -> String {
    text.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every import in `src/` that breaks a rule, as `file:line: module → target (why)`.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap_or(&file).to_path_buf();
        let module = module_of(&relative);
        let Some(rule) = RULES.iter().find(|r| r.module == module) else {
            found.push(format!(
                "src/{}: module `{module}` has no place in the layers; add it to RULES",
                relative.display()
            ));
            continue;
        };
        let source = std::fs::read_to_string(&file).unwrap_or_default();
        for (line, target) in crate_imports(&code_only(&source)) {
            let target = module_of(Path::new(&target));
            let allowed = target == module
                || rule.may_use.contains(&"*")
                || rule.may_use.contains(&target.as_str());
            if !allowed {
                found.push(format!(
                    "src/{}:{line}: `{module}` imports `crate::{target}`; {module} may use only [{}] because {}",
                    relative.display(),
                    rule.may_use.join(", "),
                    rule.why
                ));
            }
        }
    }
    found
}

#[test]
fn modules_import_only_from_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "{} import(s) climb a layer (move the type down instead):\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn no_module_imports_config() {
    // Implied by the rules, stated on its own because it is the rule most easily broken: a
    // module that needs a setting takes its own settings type, which `config` builds.
    let allowed: BTreeSet<&str> = ["main"].into();
    for rule in RULES {
        if !allowed.contains(rule.module) {
            assert!(
                !rule.may_use.contains(&"config"),
                "{} may not import config",
                rule.module
            );
        }
    }
}

#[test]
fn the_checker_sees_grouped_nested_and_commented_imports() {
    let code = code_only(
        "use crate::{grpc::pb, prove::{ProveError, client}};\n\
         // use crate::server;\n\
         let s = \"crate::config\";\n\
         let q = '\"'; fn f<'a>(x: &'a str) {}\n\
         /* crate::simulator */ crate::telemetry::init();\n\
         const LUA: &str = r#\"crate::store\"#;\n",
    );
    let names: Vec<(usize, String)> = crate_imports(&code);
    assert_eq!(
        names,
        [
            (1, "grpc".to_owned()),
            (1, "prove".to_owned()),
            (5, "telemetry".to_owned())
        ]
    );
}

#[test]
fn an_upward_import_is_reported_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let resilience = dir.path().join("resilience");
    std::fs::create_dir_all(&resilience).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        resilience.join("retry.rs"),
        "use std::time::Duration;\nuse crate::prove::ProveError;\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let found = violations(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("src/resilience/retry.rs:2: `resilience` imports `crate::prove`"),
        "{}",
        found[0]
    );
}
