//! The architecture, checked rather than eyeballed: no import cycles between the modules of the
//! issuer's domain or of the verifier library, and no arrow pointing up the issuer's layers
//! (`cli → server → http → domain → store`).
//!
//! A small reader of Rust paths, not a compiler: it collects every `crate::…`, `super::…` and
//! `self::…` path in a module's code (doc comments, comments and `#[cfg(test)]` modules left out:
//! tests may reach anywhere) and resolves it to the deepest module that exists. An edge `a → b`
//! means that `a` names something in `b`.

// Test code: a failed step should stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

struct Crate {
    /// Each module and its source (tests stripped).
    modules: BTreeMap<Module, String>,
}

impl Crate {
    fn read(src: &Path) -> Self {
        let mut modules = BTreeMap::new();
        let mut test_only = BTreeSet::new();
        for file in rs_files(src) {
            let rel = file.strip_prefix(src).unwrap();
            let mut path: Module = rel
                .iter()
                .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            if matches!(
                path.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                path.pop();
            }
            let text = std::fs::read_to_string(&file).unwrap();
            for name in test_only_children(&text) {
                let mut child = path.clone();
                child.push(name);
                test_only.insert(child);
            }
            modules.insert(path, code_only(&text));
        }
        modules.retain(|m, _| !test_only.iter().any(|t| m.starts_with(t)));
        Self { modules }
    }

    /// The deepest module `path` (already absolute) names.
    fn resolve(&self, path: &[String]) -> Module {
        let mut m = Vec::new();
        for seg in path {
            let mut next = m.clone();
            next.push(seg.clone());
            if self.modules.contains_key(&next) {
                m = next;
            } else {
                break;
            }
        }
        m
    }

    /// Every module each module names, itself left out.
    fn edges(&self) -> BTreeMap<Module, BTreeSet<Module>> {
        let mut edges = BTreeMap::new();
        for (module, code) in &self.modules {
            let mut to = BTreeSet::new();
            for path in paths(code) {
                let (base, rest) = match path.first().map(String::as_str) {
                    Some("crate") => (Vec::new(), &path[1..]),
                    Some("self") => (module.clone(), &path[1..]),
                    Some("super") => {
                        let mut base = module.clone();
                        let mut rest = &path[..];
                        while rest.first().map(String::as_str) == Some("super") {
                            base.pop();
                            rest = &rest[1..];
                        }
                        (base, rest)
                    }
                    // A child module named without `self::` (`policy::x` in `keys/mod.rs`).
                    Some(first) => {
                        let mut child = module.clone();
                        child.push(first.to_owned());
                        if !self.modules.contains_key(&child) {
                            continue;
                        }
                        (module.clone(), &path[..])
                    }
                    None => continue,
                };
                let mut full = base;
                full.extend(rest.iter().cloned());
                // Naming an ancestor's item (`super::DomainError`) is an edge to that ancestor.
                let target = self.resolve(&full);
                if &target != module {
                    to.insert(target);
                }
            }
            edges.insert(module.clone(), to);
        }
        edges
    }
}

fn rs_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(rs_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}

/// `#[cfg(test)] mod name;` declarations: modules that exist only in tests.
fn test_only_children(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|w| w[0] == "#[cfg(test)]")
        .filter_map(|w| {
            let decl = w[1].strip_prefix("pub(crate) ").unwrap_or(w[1]);
            decl.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_owned)
        })
        .collect()
}

/// The code: comments dropped, and everything from an inline `#[cfg(test)] mod … {` on (test
/// modules come last in a file).
fn code_only(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if t == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|n| n.trim().starts_with("mod ") && n.trim().ends_with('{'))
        {
            break;
        }
        let code = match t.find("//") {
            Some(i) => &t[..i],
            None => t,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// Every path (`a::b…`, not in the middle of another), `use` trees expanded.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(word(bytes[i - 1]) || bytes[i - 1] == ':');
        let mut end = i;
        while end < bytes.len() && word(bytes[end]) {
            end += 1;
        }
        if starts_word
            && end > i
            && bytes.get(end) == Some(&':')
            && bytes.get(end + 1) == Some(&':')
        {
            let (tree, used) = read_tree(&bytes[i..]);
            expand(&tree, &mut Vec::new(), &mut out);
            i += used.max(1);
        } else {
            i += 1;
        }
    }
    out
}

/// A path or a use tree: `a::b::{c, d::e}`.
enum Tree {
    Seg(String, Option<Box<Tree>>),
    Group(Vec<Tree>),
}

fn read_tree(s: &[char]) -> (Tree, usize) {
    let mut i = 0;
    while i < s.len() && s[i].is_whitespace() {
        i += 1;
    }
    if s.get(i) == Some(&'{') {
        let mut items = Vec::new();
        i += 1;
        loop {
            while i < s.len() && (s[i].is_whitespace() || s[i] == ',') {
                i += 1;
            }
            if i >= s.len() || s[i] == '}' {
                return (Tree::Group(items), i + 1);
            }
            let (t, used) = read_tree(&s[i..]);
            if used == 0 {
                return (Tree::Group(items), i + 1);
            }
            items.push(t);
            i += used;
            // Skip `as alias`.
            while i < s.len() && !matches!(s[i], ',' | '}') {
                i += 1;
            }
        }
    }
    let start = i;
    while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_' || s[i] == '*') {
        i += 1;
    }
    let seg: String = s[start..i].iter().collect();
    if seg.is_empty() {
        return (Tree::Group(Vec::new()), i);
    }
    if s.get(i) == Some(&':') && s.get(i + 1) == Some(&':') {
        let (rest, used) = read_tree(&s[i + 2..]);
        return (Tree::Seg(seg, Some(Box::new(rest))), i + 2 + used);
    }
    (Tree::Seg(seg, None), i)
}

fn expand(tree: &Tree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        Tree::Seg(seg, rest) => {
            prefix.push(seg.clone());
            match rest {
                Some(r) => expand(r, prefix, out),
                None => out.push(prefix.clone()),
            }
            prefix.pop();
        }
        Tree::Group(items) => {
            for t in items {
                expand(t, prefix, out);
            }
        }
    }
}

/// The cycles among `nodes` (strongly connected components of more than one module).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    // Tarjan's algorithm.
    struct State<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on: BTreeSet<&'a Module>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(st: &mut State<'a>, v: &'a Module) {
        st.index.insert(v, st.next);
        st.low.insert(v, st.next);
        st.next += 1;
        st.stack.push(v);
        st.on.insert(v);
        for w in st.edges.get(v).into_iter().flatten() {
            let Some((w, _)) = st.edges.get_key_value(w) else {
                continue;
            };
            if !st.index.contains_key(w) {
                visit(st, w);
                let lw = st.low[w];
                let lv = st.low[v];
                st.low.insert(v, lv.min(lw));
            } else if st.on.contains(w) {
                let iw = st.index[w];
                let lv = st.low[v];
                st.low.insert(v, lv.min(iw));
            }
        }
        if st.low[v] == st.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = st.stack.pop() {
                st.on.remove(w);
                scc.push(w.join("::"));
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                st.found.push(scc);
            }
        }
    }
    let mut st = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !st.index.contains_key(v) {
            visit(&mut st, v);
        }
    }
    st.found
}

/// The edges among modules under `root`, each module cut to `depth` segments below the root
/// (1: whole subdomains), self-loops dropped.
fn within(
    edges: &BTreeMap<Module, BTreeSet<Module>>,
    root: &[&str],
    depth: Option<usize>,
) -> BTreeMap<Module, BTreeSet<Module>> {
    let root: Module = root.iter().map(|s| (*s).to_owned()).collect();
    let cut = |m: &Module| -> Module {
        match depth {
            Some(d) => m.iter().take(root.len() + d).cloned().collect(),
            None => m.clone(),
        }
    };
    let mut out: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (from, tos) in edges {
        if !from.starts_with(&root) {
            continue;
        }
        let f = cut(from);
        let entry = out.entry(f.clone()).or_default();
        for to in tos {
            if to.starts_with(&root) {
                let t = cut(to);
                if t != f && t != root {
                    entry.insert(t);
                }
            }
        }
    }
    out
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_issuer_domain_has_no_import_cycles_between_modules_or_subdomains() {
    let krate = Crate::read(&manifest_dir().join("src"));
    let edges = krate.edges();
    assert!(
        edges.contains_key(&vec!["domain".to_owned(), "token".to_owned()]),
        "the reader found the domain's modules"
    );
    let files = within(&edges, &["domain"], None);
    assert_eq!(cycles(&files), Vec::<Vec<String>>::new(), "module cycles");
    let subdomains = within(&edges, &["domain"], Some(1));
    assert_eq!(
        cycles(&subdomains),
        Vec::<Vec<String>>::new(),
        "subdomain cycles: {subdomains:#?}"
    );
}

#[test]
fn no_arrow_points_up_the_issuers_layers() {
    let krate = Crate::read(&manifest_dir().join("src"));
    let edges = krate.edges();
    // Each layer and the layers it must never name.
    let rules: [(&str, &[&str]); 3] = [
        ("store", &["domain", "http", "cli", "server"]),
        ("domain", &["http", "cli", "server"]),
        ("http", &["cli"]),
    ];
    let mut up = Vec::new();
    for (layer, above) in rules {
        for (from, tos) in &edges {
            if from.first().map(String::as_str) != Some(layer) {
                continue;
            }
            for to in tos {
                if to.first().is_some_and(|t| above.contains(&t.as_str())) {
                    up.push(format!("{} → {}", from.join("::"), to.join("::")));
                }
            }
        }
    }
    assert_eq!(up, Vec::<String>::new());
}

#[test]
fn the_verifier_library_has_no_import_cycles() {
    let krate = Crate::read(&manifest_dir().join("../verifier-lib/src"));
    let edges = krate.edges();
    assert!(edges.contains_key(&vec!["builder".to_owned()]));
    let all = within(&edges, &[], None);
    assert_eq!(cycles(&all), Vec::<Vec<String>>::new());
}

#[test]
fn the_reader_sees_a_cycle_when_there_is_one() {
    let a = vec!["a".to_owned()];
    let b = vec!["b".to_owned()];
    let edges = BTreeMap::from([
        (a.clone(), BTreeSet::from([b.clone()])),
        (b.clone(), BTreeSet::from([a.clone()])),
    ]);
    assert_eq!(cycles(&edges).len(), 1);
    let mut found = Vec::new();
    expand(
        &read_tree(
            &"crate::domain::{keys::{api_key, limits::X}, token}"
                .chars()
                .collect::<Vec<_>>(),
        )
        .0,
        &mut Vec::new(),
        &mut found,
    );
    assert_eq!(
        found,
        [
            vec!["crate", "domain", "keys", "api_key"],
            vec!["crate", "domain", "keys", "limits", "X"],
            vec!["crate", "domain", "token"]
        ]
    );
}
