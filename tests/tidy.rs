//! Tidy checks that keep the architecture true, in the manner of
//! rust-analyzer's tidy tests: they read the source tree and ARCHITECTURE.md,
//! not the running broker (so they live apart from the black-box tests in
//! `tests/it`).
//!
//! - `imports_follow_the_documented_layers`: every `crate::<module>` path in
//!   `src/` names a module of a lower layer (or the file's own module), per
//!   the "Layers" table of ARCHITECTURE.md; so does every `super::` chain.
//! - `only_the_storage_side_touches_files`: file-system calls appear only in
//!   the modules the table marks as owning files.
//! - `source_files_stay_small`: no file in `src/` over the stated bound
//!   without a reason recorded here.
//! - `the_code_map_names_every_module`: every source file has a row in
//!   ARCHITECTURE.md's code map (its own, or its directory's), and every
//!   row names a path that exists.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The layer table of ARCHITECTURE.md: module → (rank, owns files).
struct Layers {
    rank: BTreeMap<String, usize>,
    owns_files: Vec<String>,
}

fn layers() -> Layers {
    let text = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let section = text
        .split("\n## Layers\n")
        .nth(1)
        .expect("ARCHITECTURE.md has a '## Layers' section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    let mut rank = BTreeMap::new();
    let mut owns_files = Vec::new();
    // Rows: | rank | `module`, `module` | files? |
    for line in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let Ok(r) = cells[0].parse::<usize>() else {
            continue;
        };
        for m in cells[1].split(',') {
            let m = m.trim().trim_matches('`').to_string();
            assert!(!m.is_empty(), "empty module name in layer row {line:?}");
            // "yes" for the whole row, or "`m`, `n` only: yes".
            let files = cells.get(2).copied().unwrap_or("no");
            let named = files
                .strip_suffix(" only: yes")
                .is_some_and(|ms| ms.split(',').any(|x| x.trim().trim_matches('`') == m));
            if files.starts_with("yes") || named {
                owns_files.push(m.clone());
            }
            assert!(rank.insert(m.clone(), r).is_none(), "{m} listed twice");
        }
    }
    assert!(rank.len() >= 8, "layer table looks truncated: {rank:?}");
    Layers { rank, owns_files }
}

/// The top-level module a file under `src/` belongs to (`None` for the
/// crate roots `lib.rs` and `main.rs`), and the module path inside it.
fn module_of(file: &Path) -> Option<(String, Vec<String>)> {
    let rel = file.strip_prefix(root().join("src")).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
        return None;
    }
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    Some((parts[0].clone(), parts))
}

/// Source text with `//` comments and string literals blanked, so a comment
/// or a message naming `crate::broker` does not count as a use.
fn code_only(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    for line in src.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut kept = String::with_capacity(line.len());
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !in_str && c == '/' && chars.get(i + 1) == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' && !(prev == '\'' && chars.get(i + 1) == Some(&'\'')) {
                in_str = !in_str;
            }
            kept.push(if in_str { ' ' } else { c });
            prev = if prev == '\\' && c == '\\' { ' ' } else { c };
            i += 1;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// Every module named by a `crate::x` path or reached by a `super::` chain
/// that climbs out of the file's own top-level module.
fn referenced_modules(code: &str, module_path: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let ident = |at: usize| -> String {
        code[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let boundary =
        |at: usize| at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
    let mut i = 0;
    while let Some(off) = code[i..].find("crate::") {
        let at = i + off;
        if boundary(at) {
            let name = ident(at + "crate::".len());
            if name == "{" || name.is_empty() {
                // `crate::{a, b}`: every name in the group.
                if let Some(close) = code[at..].find('}') {
                    for part in code[at + 7..at + close].trim_start_matches('{').split(',') {
                        let n: String = part
                            .trim()
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        if !n.is_empty() {
                            found.push(n);
                        }
                    }
                }
            } else {
                found.push(name);
            }
        }
        i = at + 1;
    }
    // `super::super::x` from src/a/b.rs (module a::b) is `crate::x`: a chain
    // as long as the module path leaves the top-level module. (Inside an
    // inline `mod tests` the same chain stays one level lower; reporting it
    // anyway errs on the side of a louder check.)
    let mut i = 0;
    while let Some(off) = code[i..].find("super::") {
        let at = i + off;
        if boundary(at) {
            let mut n = 0;
            let mut p = at;
            while code[p..].starts_with("super::") {
                n += 1;
                p += "super::".len();
            }
            let name = ident(p);
            // `use super::*` in a test module, or a name the crate root
            // does not have (an inline module's parent): nothing to check.
            if n >= module_path.len() && is_top_module(&name) {
                found.push(name);
            }
            i = p;
        } else {
            i = at + 1;
        }
    }
    found
}

/// Whether `name` is a directory or file directly under `src/`.
fn is_top_module(name: &str) -> bool {
    !name.is_empty()
        && (root().join("src").join(name).is_dir()
            || root().join("src").join(format!("{name}.rs")).is_file())
}

#[test]
fn imports_follow_the_documented_layers() {
    let layers = layers();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut violations = Vec::new();
    for f in &files {
        let Some((module, path)) = module_of(f) else {
            continue;
        };
        let own = *layers
            .rank
            .get(&module)
            .unwrap_or_else(|| panic!("src/{module} is not in ARCHITECTURE.md's layer table"));
        let code = code_only(&fs::read_to_string(f).expect("source file"));
        for used in referenced_modules(&code, &path) {
            if used == module {
                continue;
            }
            match layers.rank.get(&used) {
                Some(&r) if r < own => {}
                Some(&r) => violations.push(format!(
                    "{} (layer {own}) uses crate::{used} (layer {r})",
                    f.strip_prefix(root()).unwrap_or(f).display()
                )),
                None => violations.push(format!(
                    "{} uses crate::{used}, which the layer table does not list",
                    f.strip_prefix(root()).unwrap_or(f).display()
                )),
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against ARCHITECTURE.md's layers:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_layer_check_can_fail() {
    // The checker itself: an upward import is found, comments and strings are not.
    let code = code_only(
        "use crate::handlers::KafkaApis; // crate::server\nlet s = \"crate::network\";\nuse crate::{broker, util::now_ms};\n",
    );
    let found = referenced_modules(&code, &["storage".into(), "log".into()]);
    assert_eq!(found, vec!["handlers", "broker", "util"]);
    let found = referenced_modules(
        "use super::super::server::x;",
        &["broker".into(), "a".into()],
    );
    assert_eq!(found, vec!["server"]);
    let found = referenced_modules("use super::partition::P;", &["broker".into(), "a".into()]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn only_the_storage_side_touches_files() {
    let layers = layers();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut violations = Vec::new();
    for f in &files {
        let Some((module, _)) = module_of(f) else {
            continue;
        };
        if layers.owns_files.contains(&module) {
            continue;
        }
        let code = code_only(&fs::read_to_string(f).expect("source file"));
        // Opening, creating, reading, writing, renaming or removing; holding
        // an already open `File` (a fetch's sendfile region) is not I/O.
        for needle in [
            "fs::read",
            "fs::write",
            "fs::remove",
            "fs::rename",
            "fs::create_dir",
            "fs::copy",
            "File::open",
            "File::create",
            "OpenOptions",
        ] {
            if code.contains(needle) {
                violations.push(format!(
                    "{} uses {needle}, but {module} does not own files",
                    f.strip_prefix(root()).unwrap_or(f).display()
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

/// Files allowed past [`MAX_LINES`], each with its reason.
const LONG_FILES: &[(&str, &str)] = &[
    (
        "src/coordinator/group/coordinator.rs",
        "the facade of every group type (classic, consumer, share): one method per operation; the share-group methods should move out with the share-group records",
    ),
    (
        "src/coordinator/group/consumer/heartbeat.rs",
        "ConsumerGroupHeartbeat's steps shared with classic members' joins, plus fencing (which may downgrade the group) and ConsumerGroupDescribe; fencing and the timers should move to their own module",
    ),
    (
        "src/protocol/schema/tables.rs",
        "one table per request the broker accepts, in wire order; the share-group APIs pushed it past the limit",
    ),
    (
        "src/coordinator/group/streams/records.rs",
        "six record layouts with their round-trip and replay tests; the tests are a third of it",
    ),
];
const MAX_LINES: usize = 900;

#[test]
fn source_files_stay_small() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut long = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(root()).unwrap_or(f).display().to_string();
        let lines = fs::read_to_string(f).expect("source file").lines().count();
        if lines > MAX_LINES && !LONG_FILES.iter().any(|(p, _)| *p == rel) {
            long.push(format!("{rel}: {lines} lines"));
        }
    }
    assert!(
        long.is_empty(),
        "split these by concern, or list them in LONG_FILES with the reason:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_code_map_names_every_module() {
    let text = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let section = text
        .split("\n## Code map\n")
        .nth(1)
        .expect("ARCHITECTURE.md has a '## Code map' section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    let rows: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    assert!(
        rows.len() > 50,
        "code map looks truncated: {} rows",
        rows.len()
    );
    let mut problems = Vec::new();
    for r in &rows {
        if !root().join(r).exists() {
            problems.push(format!("code map row `{r}` names no file or directory"));
        }
    }
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    for f in &files {
        let rel = f
            .strip_prefix(root())
            .unwrap_or(f)
            .to_string_lossy()
            .to_string();
        // Unit tests kept in their own file go with their module.
        if rel.ends_with("/tests.rs") {
            continue;
        }
        let covered = rows
            .iter()
            .any(|r| *r == rel || (r.ends_with('/') && rel.starts_with(r.as_str())));
        if !covered {
            problems.push(format!("{rel} has no row in the code map"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
