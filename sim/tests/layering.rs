//! The layering of both crates, checked from their sources: a module may import only modules in
//! layers below its own, so no import cycle can form between top-level modules. README's module
//! map shows the same layers; this file is where they are written down, once.
//!
//! An import is any `crate::MODULE` path in code (a `use`, a `use crate::{a, b::c}` group, or a
//! path written inline), comments and string literals aside. A top-level module that is in no
//! layer fails the test, so a new module has to be placed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// sim's layers, top to bottom. Modules of one layer may not import each other.
const SIM_LAYERS: &[&[&str]] = &[
    &["commands"],
    &["report"],
    &["run"],
    // Parses and validates scenario files. Only `run::spec`'s translation and the layers
    // above it read scenario types; the world, nemesis and clients get typed specs.
    &["scenario"],
    &["metrics"],
    &["nemesis", "workload"],
    &["world"],
    &["check"],
    &["history"],
    &["ids"],
];

/// broker-core's layers, top to bottom.
const CORE_LAYERS: &[&[&str]] = &[
    &["master_slave"],
    &["broker"],
    &["raft"],
    &["proto"],
    &["store"],
    &["types"],
];

/// Top-level modules of a crate's `src`: `name.rs` or `name/`, with every `.rs` file in it.
/// `lib.rs` (module declarations only) and `main.rs` (the binary: it sees the library as
/// `sim::`, not `crate::`) are not modules of the layering.
fn top_level_modules(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut modules = BTreeMap::new();
    let entries = std::fs::read_dir(src).expect("the crate's src folder is readable");
    for entry in entries {
        let path = entry.expect("a readable directory entry").path();
        let name = path
            .file_stem()
            .expect("every entry has a name")
            .to_string_lossy()
            .to_string();
        if path.is_dir() {
            modules.insert(name, rust_files(&path));
        } else if path.extension().is_some_and(|extension| extension == "rs")
            && name != "lib"
            && name != "main"
        {
            modules.insert(name, vec![path]);
        }
    }
    modules
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("a readable module folder") {
            let path = entry.expect("a readable directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The source with comments and the contents of string and char literals blanked out, so that
/// `crate::` in a doc comment or a message is not an import.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        let next = chars.get(index + 1).copied();
        if c == '/' && next == Some('/') {
            while index < chars.len() && chars[index] != '\n' {
                index += 1;
            }
        } else if c == '/' && next == Some('*') {
            index += 2;
            while index + 1 < chars.len() && !(chars[index] == '*' && chars[index + 1] == '/') {
                index += 1;
            }
            index += 2;
        } else if c == '"' {
            index += 1;
            while index < chars.len() && chars[index] != '"' {
                index += if chars[index] == '\\' { 2 } else { 1 };
            }
            index += 1;
            out.push_str("\"\"");
        } else if c == '\''
            && next.is_some_and(|n| n != '\\')
            && chars.get(index + 2) == Some(&'\'')
        {
            out.push_str("' '");
            index += 3;
        } else {
            out.push(c);
            index += 1;
        }
    }
    out
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The first identifier at the start of `text` (after whitespace).
fn leading_ident(text: &str) -> Option<String> {
    let ident: String = text
        .trim_start()
        .chars()
        .take_while(|c| is_ident_char(*c))
        .collect();
    (!ident.is_empty()).then_some(ident)
}

/// The top-level modules a piece of code names through `crate::`.
fn imported_modules(code: &str) -> BTreeSet<String> {
    let mut imported = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| is_ident_char(c) || c == '$');
        rest = &rest[at + "crate::".len()..];
        if preceded_by_ident {
            continue;
        }
        let after = rest.trim_start();
        if let Some(group) = after.strip_prefix('{') {
            // `crate::{a, b::{c, d}, e}`: the first identifier of each top-level item.
            let mut depth = 1;
            let mut item_start = true;
            for (offset, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    _ if item_start && is_ident_char(c) => {
                        if let Some(ident) = leading_ident(&group[offset..]) {
                            imported.insert(ident);
                        }
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else if let Some(ident) = leading_ident(after) {
            imported.insert(ident);
        }
    }
    imported
}

/// Every forbidden arrow of a crate: `(from, to, file)` where `to` is not in a layer below
/// `from`'s, plus every top-level module that is in no layer.
fn forbidden_arrows(src: &Path, layers: &[&[&str]]) -> Vec<String> {
    let layer_of = |module: &str| layers.iter().position(|layer| layer.contains(&module));
    let mut problems = Vec::new();
    for (module, files) in top_level_modules(src) {
        let Some(from_layer) = layer_of(&module) else {
            problems.push(format!(
                "module `{module}` is in no layer: add it to the layers in {}",
                file!()
            ));
            continue;
        };
        for file in files {
            let source = std::fs::read_to_string(&file).expect("a readable source file");
            for target in imported_modules(&code_only(&source)) {
                if target == module || target == "self" || target == "super" {
                    continue;
                }
                match layer_of(&target) {
                    Some(to_layer) if to_layer > from_layer => {}
                    Some(_) => problems.push(format!(
                        "{}: `{module}` imports `{target}`, which is not in a layer below it",
                        file.display()
                    )),
                    // A name that is not a top-level module (e.g. a re-export at the crate root).
                    None => problems.push(format!(
                        "{}: `{module}` names `crate::{target}`, which is no layered module",
                        file.display()
                    )),
                }
            }
        }
    }
    problems
}

/// sim's modules import only modules in layers below their own.
#[test]
fn sim_modules_import_only_downwards() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = forbidden_arrows(&src, SIM_LAYERS);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// broker-core's modules import only modules in layers below their own.
#[test]
fn broker_core_modules_import_only_downwards() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../broker-core/src");
    let problems = forbidden_arrows(&src, CORE_LAYERS);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The scanner itself: each way of naming a module is seen, comments and strings are not, and
/// an upward arrow is reported with its file.
#[test]
fn the_scanner_sees_every_form_of_import_and_reports_an_upward_arrow() {
    let code = code_only(
        "use crate::world::World;\n\
         use crate::{history::Operation, ids::{QueueId, SimTime},\n    scenario};\n\
         fn f() { crate::metrics::percentiles(&[]); }\n\
         // use crate::report::Table;\n\
         /* crate::commands */\n\
         const TEXT: &str = \"crate::nemesis\";\n\
         macro_rules! m { () => { $crate::run::x() }; }\n\
         pub(crate) fn g() {}\n",
    );
    let imported: Vec<String> = imported_modules(&code).into_iter().collect();
    assert_eq!(
        imported,
        ["history", "ids", "metrics", "scenario", "world"].map(String::from)
    );

    let dir = std::env::temp_dir().join(format!("hasim-layering-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("low")).expect("a temp folder");
    std::fs::write(dir.join("low/mod.rs"), "use crate::high::X;\n").expect("writable");
    std::fs::write(dir.join("high.rs"), "use crate::low::Y;\n").expect("writable");
    std::fs::write(dir.join("stray.rs"), "\n").expect("writable");
    let problems = forbidden_arrows(&dir, &[&["high"], &["low"]]);
    std::fs::remove_dir_all(&dir).expect("removable");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("`low` imports `high`"), "{problems:?}");
    assert!(
        problems[1].contains("`stray` is in no layer"),
        "{problems:?}"
    );
}
