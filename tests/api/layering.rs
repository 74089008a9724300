//! The architecture invariants of ARCHITECTURE.md, read from the source: which modules
//! may name which crates and modules, and that no module imports, directly or around a
//! circle, one that imports it back.
//!
//! Paths are read from the code with comments and string literals left out: `use`
//! trees and every `crate::`, `super::` and `self::` path. An item a parent module
//! re-exports counts as the parent's, not as the child's that defines it.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// One source file of the crate: its module path and its code without comments or
/// string literals.
struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
    code: String,
}

fn sources() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(&root).unwrap();
                let mut module: Vec<String> = relative
                    .with_extension("")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    module.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    module.pop();
                }
                let code = without_comments(&std::fs::read_to_string(&path).unwrap());
                files.push(SourceFile { path, module, code });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// `source` with comments and the contents of string and char literals blanked out.
fn without_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' => {
                out.push('"');
                let mut escaped = false;
                for c in chars.by_ref() {
                    if c == '"' && !escaped {
                        break;
                    }
                    escaped = c == '\\' && !escaped;
                }
                out.push('"');
            }
            // A char literal ('x', '\n'); a lifetime ('a) has no closing quote.
            '\'' => {
                let rest: String = chars.clone().take(4).collect();
                let close = if rest.starts_with('\\') {
                    rest.char_indices().skip(2).find(|(_, c)| *c == '\'')
                } else {
                    rest.char_indices().nth(1).filter(|(_, c)| *c == '\'')
                };
                match close {
                    Some((at, _)) => {
                        for _ in 0..=at {
                            chars.next();
                        }
                        out.push_str("' '");
                    }
                    None => out.push('\''),
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `code` holds `word` as a whole identifier.
fn names(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// Every module path the file refers to, as written (`crate::a::b`, `super::c`),
/// `use` trees expanded.
fn paths(code: &str) -> Vec<Vec<String>> {
    let tokens = tokens(code);
    let mut found = Vec::new();
    let mut at = 0;
    while at < tokens.len() {
        let starts = matches!(tokens[at].as_str(), "crate" | "super" | "self")
            && (at == 0 || tokens[at - 1] != "::")
            && tokens.get(at + 1).is_some_and(|t| t == "::");
        if starts {
            at = tree(&tokens, at, Vec::new(), &mut found);
        } else {
            at += 1;
        }
    }
    found
}

/// Reads a path or `use` tree from `tokens[at]` on, with `prefix` before it; returns the
/// index after it.
fn tree(
    tokens: &[String],
    mut at: usize,
    mut prefix: Vec<String>,
    found: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        match tokens.get(at).map(String::as_str) {
            Some("{") => {
                at += 1;
                loop {
                    match tokens.get(at).map(String::as_str) {
                        Some("}") => return at + 1,
                        Some(",") => at += 1,
                        // A glob or anything but a path: skipped.
                        Some(_) => at = tree(tokens, at, prefix.clone(), found).max(at + 1),
                        None => return at,
                    }
                }
            }
            Some(word) if word.chars().all(is_word) && !word.is_empty() => {
                prefix.push(word.to_owned());
                at += 1;
                if tokens.get(at).is_some_and(|t| t == "::") {
                    at += 1;
                    continue;
                }
                found.push(prefix);
                return at;
            }
            _ => {
                found.push(prefix);
                return at;
            }
        }
    }
}

/// The code as identifiers, `::`, and single punctuation characters.
fn tokens(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if is_word(c) {
            let mut word = c.to_string();
            while let Some(&next) = chars.peek().filter(|c| is_word(**c)) {
                word.push(next);
                chars.next();
            }
            tokens.push(word);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            tokens.push("::".into());
        } else if !c.is_whitespace() {
            tokens.push(c.to_string());
        }
    }
    tokens
}

/// The crate's modules, by path.
fn modules(files: &[SourceFile]) -> BTreeSet<Vec<String>> {
    let mut modules = BTreeSet::new();
    for file in files {
        for end in 0..=file.module.len() {
            modules.insert(file.module[..end].to_vec());
        }
    }
    modules
}

/// The module a path written in `file` names: its longest prefix that is a module.
fn resolve(
    file: &SourceFile,
    path: &[String],
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let mut base = file.module.clone();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            // From `x.rs` and from `x/mod.rs` alike, `super` is `x`'s parent.
            while rest.first().is_some_and(|p| p == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    let mut target = base;
    for part in rest {
        let mut next = target.clone();
        next.push(part.clone());
        if !modules.contains(&next) {
            break;
        }
        target = next;
    }
    Some(target)
}

/// The edges between the children of each module: `a -> b` when code in `a` (or below
/// it) names `b` (or something below it), for `a` and `b` children of the same module.
fn sibling_edges(files: &[SourceFile]) -> BTreeMap<Vec<String>, BTreeSet<(String, String)>> {
    let modules = modules(files);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<(String, String)>> = BTreeMap::new();
    for file in files {
        for path in paths(&file.code) {
            let Some(target) = resolve(file, &path, &modules) else {
                continue;
            };
            let shared = file
                .module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if let (Some(from), Some(to)) = (file.module.get(shared), target.get(shared)) {
                edges
                    .entry(file.module[..shared].to_vec())
                    .or_default()
                    .insert((from.clone(), to.clone()));
            }
        }
    }
    edges
}

/// A circle in `edges`, if there is one.
fn circle(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeSet<(String, String)>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for (_, to) in edges.iter().filter(|(from, _)| from == node) {
            if let Some(circle) = visit(to, edges, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .iter()
        .find_map(|(from, _)| visit(from, edges, &mut Vec::new(), &mut done))
}

fn under<'a>(files: &'a [SourceFile], module: &str) -> impl Iterator<Item = &'a SourceFile> {
    files
        .iter()
        .filter(move |f| f.module.first().is_some_and(|m| m == module))
}

#[test]
fn the_engine_the_model_and_the_store_never_name_generated_or_grpc_types() {
    let files = sources();
    for module in ["engine", "model", "store"] {
        for file in under(&files, module) {
            for name in ["proto", "tonic", "prost", "http"] {
                assert!(
                    !names(&file.code, name),
                    "{} names `{name}`",
                    file.path.display()
                );
            }
        }
    }
}

#[test]
fn only_the_store_names_sled() {
    for file in sources() {
        if file.module.first().is_some_and(|m| m == "store") {
            continue;
        }
        assert!(
            !names(&file.code, "sled"),
            "{} names `sled`",
            file.path.display()
        );
    }
}

#[test]
fn only_the_metrics_name_the_prometheus_client() {
    for file in sources() {
        if file.module.first().is_some_and(|m| m == "metrics") {
            continue;
        }
        assert!(
            !names(&file.code, "prometheus_client"),
            "{} names `prometheus_client`: counts outside `metrics` are plain atomics or \
             the store's `WriteObserver`",
            file.path.display()
        );
    }
}

#[test]
fn only_telemetry_and_the_call_layers_name_opentelemetry() {
    let allowed = [
        "telemetry",
        "server",
        "api::trace_context",
        "api::forward",
        "server::call_status",
    ];
    for file in sources() {
        let module = file.module.join("::");
        if allowed.contains(&module.as_str()) {
            continue;
        }
        for name in [
            "opentelemetry",
            "opentelemetry_sdk",
            "tracing_opentelemetry",
        ] {
            assert!(
                !names(&file.code, name),
                "{} names `{name}`",
                file.path.display()
            );
        }
    }
}

#[test]
fn the_engine_and_the_model_are_pure() {
    let files = sources();
    for module in ["engine", "model"] {
        for file in under(&files, module) {
            for name in ["tokio", "sled", "fs", "net", "thread", "Mutex"] {
                assert!(
                    !names(&file.code, name),
                    "{} names `{name}`",
                    file.path.display()
                );
            }
        }
    }
}

#[test]
fn modules_import_only_in_the_direction_of_the_layers() {
    // Each layer and the modules of the crate it may name.
    let allowed: [(&str, &[&str]); 5] = [
        ("model", &[]),
        ("engine", &["model"]),
        ("store", &["engine", "model"]),
        ("api", &["engine", "model", "store", "proto"]),
        ("follower", &["api", "connect", "model", "store", "proto"]),
    ];
    let edges = sibling_edges(&sources());
    let top = edges.get(&Vec::new()).cloned().unwrap_or_default();
    for (layer, may) in allowed {
        for (from, to) in top.iter().filter(|(from, _)| from == layer) {
            assert!(may.contains(&to.as_str()), "`{from}` imports `{to}`");
        }
    }
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let edges = sibling_edges(&sources());
    assert!(
        edges.contains_key(&vec!["model".to_owned()]),
        "the reading finds imports"
    );
    for (parent, edges) in &edges {
        if let Some(circle) = circle(edges) {
            panic!(
                "modules of `crate::{}` import each other in a circle: {}",
                parent.join("::"),
                circle.join(" -> ")
            );
        }
    }
}

#[test]
fn the_reading_of_paths_expands_use_trees_and_skips_comments_and_strings() {
    let code = without_comments(
        "use super::{a, b::{c, d}}; // crate::hidden\nlet x = \"crate::also_hidden\"; crate::e::f(); 'x'; fn g<'a>() {}",
    );
    let found: Vec<String> = paths(&code).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        found,
        ["super::a", "super::b::c", "super::b::d", "crate::e::f"]
    );
    assert!(names("use sled::Db;", "sled"));
    assert!(!names("let sledge = 1;", "sled"));
    let mut edges = BTreeSet::new();
    edges.insert(("a".to_owned(), "b".to_owned()));
    edges.insert(("b".to_owned(), "c".to_owned()));
    assert_eq!(circle(&edges), None);
    edges.insert(("c".to_owned(), "a".to_owned()));
    assert_eq!(circle(&edges).map(|c| c.len()), Some(4));
}
