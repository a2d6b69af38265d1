//! `kastle profile create|list|use|show|delete`: named connection profiles,
//! in the spirit of `rpk profile`. A profile is a Kafka client properties
//! file (`bootstrap.servers` plus what `--command-config` takes:
//! `security.protocol`, `sasl.*`, `ssl.*`) kept in
//! `$KASTLE_CONFIG_DIR/profiles/NAME.properties` (default
//! `$XDG_CONFIG_HOME/kastle`, else `~/.config/kastle`), written with mode
//! 0600 because it may hold passwords. Every command picks its profile from
//! `--profile NAME`, else `$KASTLE_PROFILE`, else the one `kastle profile
//! use` recorded in `current-profile`; `-b`, `$KASTLE_BOOTSTRAP` and
//! `--command-config` still win over what the profile says.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{flag, key_value, print_json, print_table, Args, CliError, Flag};
use crate::config::properties::escape;

pub const SUBCOMMANDS: &[&str] = &["create", "list", "use", "show", "delete"];

pub const SPEC: &[Flag] = &[flag(&["-X", "--property"], true), flag(&["--force"], false)];

/// A profile file is small; anything bigger is not one of ours.
const MAX_PROFILE_BYTES: u64 = 64 * 1024;
const CURRENT: &str = "current-profile";

/// The properties of a selected profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub properties: BTreeMap<String, String>,
}

impl Profile {
    pub fn bootstrap(&self) -> Option<&str> {
        self.properties
            .get("bootstrap.servers")
            .map(String::as_str)
            .filter(|b| !b.trim().is_empty())
    }
}

/// Where profiles live.
pub fn config_dir() -> Result<PathBuf, CliError> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = env("KASTLE_CONFIG_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = env("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(d).join("kastle"));
    }
    env("HOME")
        .map(|h| PathBuf::from(h).join(".config").join("kastle"))
        .ok_or_else(|| {
            CliError::Usage("no profile directory: set KASTLE_CONFIG_DIR or HOME".into())
        })
}

fn check_name(name: &str) -> Result<(), CliError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "profile name {name:?}: 1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.'"
        )))
    }
}

fn profile_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("profiles").join(format!("{name}.properties"))
}

/// Reads a properties file of at most [`MAX_PROFILE_BYTES`].
pub fn read_properties(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let len = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if len > MAX_PROFILE_BYTES {
        return Err(format!(
            "{}: {len} bytes, more than the {MAX_PROFILE_BYTES} a client properties file may have",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    crate::config::properties::parse_properties(&text)
        .map(|kv| kv.into_iter().collect())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn load(dir: &Path, name: &str) -> Result<Profile, CliError> {
    check_name(name)?;
    let path = profile_path(dir, name);
    if !path.exists() {
        return Err(CliError::Usage(format!(
            "no profile {name:?} (in {}; `kastle profile list`)",
            dir.join("profiles").display()
        )));
    }
    let properties = read_properties(&path).map_err(CliError::Usage)?;
    Ok(Profile {
        name: name.to_string(),
        properties,
    })
}

fn current_name(dir: &Path) -> Result<Option<String>, CliError> {
    match std::fs::read_to_string(dir.join(CURRENT)) {
        Ok(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::Other(format!(
            "{}: {e}",
            dir.join(CURRENT).display()
        ))),
    }
}

/// The profile a command runs with: `--profile`, else `$KASTLE_PROFILE`,
/// else the current one; `None` when none is chosen.
pub fn selected(flag: Option<&str>) -> Result<Option<Profile>, CliError> {
    let env = std::env::var("KASTLE_PROFILE")
        .ok()
        .filter(|p| !p.trim().is_empty());
    if let Some(name) = flag.map(str::to_string).or(env) {
        return load(&config_dir()?, name.trim()).map(Some);
    }
    // No profile asked for: only look at the directory when it exists, so
    // a machine without one (or without $HOME) is not an error.
    let Ok(dir) = config_dir() else {
        return Ok(None);
    };
    match current_name(&dir)? {
        Some(name) => load(&dir, &name).map(Some),
        None => Ok(None),
    }
}

/// Writes `path` with owner-only permissions (it may hold passwords), via a
/// temporary file renamed over it.
fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    let fail = |e: std::io::Error| CliError::Other(format!("writing {}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(fail)
}

/// A value shown with secrets masked: passwords in `sasl.jaas.config` and
/// any property whose name says password.
fn shown(key: &str, value: &str) -> String {
    if key.contains("password") {
        return "[hidden]".into();
    }
    if key == "sasl.jaas.config" {
        let mut out = String::new();
        let mut rest = value;
        while let Some(i) = rest.find("password=") {
            let (head, tail) = rest.split_at(i + "password=".len());
            out.push_str(head);
            out.push_str("\"[hidden]\"");
            let end = if let Some(quoted) = tail.strip_prefix('"') {
                quoted.find('"').map_or(tail.len(), |j| j + 2)
            } else {
                tail.find([' ', ';']).unwrap_or(tail.len())
            };
            rest = &tail[end..];
        }
        out.push_str(rest);
        return out;
    }
    value.to_string()
}

pub async fn run(argv: &[String]) -> Result<(), CliError> {
    let args = Args::parse(argv, SPEC)?;
    let json_out = args.has("--json");
    let dir = config_dir()?;
    let sub = args.positional(0, "subcommand (create, list, use, show, delete)")?;
    match sub {
        "create" => {
            let name = args.positional(1, "profile name")?;
            check_name(name)?;
            let path = profile_path(&dir, name);
            if path.exists() && !args.has("--force") {
                return Err(CliError::Usage(format!(
                    "profile {name:?} exists ({}); --force replaces it",
                    path.display()
                )));
            }
            // --command-config's properties first, then -b, then -X.
            let mut props = match args.value("--command-config") {
                Some(p) => read_properties(Path::new(p))
                    .map_err(|e| CliError::Usage(format!("--command-config {e}")))?,
                None => BTreeMap::new(),
            };
            if let Some(b) = args.value("-b") {
                props.insert("bootstrap.servers".into(), b.to_string());
            }
            for kv in args.values("-X") {
                let (k, v) = key_value(kv, "-X")?;
                props.insert(k, v);
            }
            if !props.contains_key("bootstrap.servers") {
                return Err(CliError::Usage(
                    "a profile needs -b HOST:PORT[,...] (or bootstrap.servers in -X or --command-config)"
                        .into(),
                ));
            }
            let mut text = format!("# kastle profile {name}\n");
            for (k, v) in &props {
                text.push_str(&format!("{}={}\n", escape(k, true), escape(v, false)));
            }
            write_private(&path, &text)?;
            if json_out {
                print_json(&json!({"profile": name, "path": path.display().to_string()}));
            } else {
                println!("profile {name} written to {}", path.display());
            }
        }
        "list" => {
            let current = current_name(&dir)?;
            let mut names = Vec::new();
            match std::fs::read_dir(dir.join("profiles")) {
                Ok(entries) => {
                    for e in entries.flatten() {
                        let file = e.file_name().to_string_lossy().into_owned();
                        if let Some(n) = file.strip_suffix(".properties") {
                            if check_name(n).is_ok() {
                                names.push(n.to_string());
                            }
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(CliError::Other(format!(
                        "{}: {e}",
                        dir.join("profiles").display()
                    )))
                }
            }
            names.sort();
            let rows: Vec<(String, bool, String)> = names
                .iter()
                .map(|n| {
                    let bootstrap = load(&dir, n)
                        .ok()
                        .and_then(|p| p.bootstrap().map(str::to_string))
                        .unwrap_or_default();
                    (n.clone(), current.as_deref() == Some(n), bootstrap)
                })
                .collect();
            if json_out {
                print_json(&json!(rows
                    .iter()
                    .map(|(n, c, b)| json!({"name": n, "current": c, "bootstrap_servers": b}))
                    .collect::<Vec<_>>()));
            } else {
                print_table(
                    &["NAME", "CURRENT", "BOOTSTRAP"],
                    &rows
                        .into_iter()
                        .map(|(n, c, b)| vec![n, if c { "*".into() } else { String::new() }, b])
                        .collect::<Vec<_>>(),
                );
            }
        }
        "use" => {
            let name = args.positional(1, "profile name")?;
            load(&dir, name)?;
            write_private(&dir.join(CURRENT), &format!("{name}\n"))?;
            if json_out {
                print_json(&json!({"profile": name, "current": true}));
            } else {
                println!("using profile {name}");
            }
        }
        "show" => {
            let profile = match args.positional.get(1) {
                Some(n) => load(&dir, n)?,
                None => selected(args.value("--profile"))?
                    .ok_or_else(|| CliError::Usage("no profile selected".into()))?,
            };
            if json_out {
                let props: BTreeMap<&String, String> = profile
                    .properties
                    .iter()
                    .map(|(k, v)| (k, shown(k, v)))
                    .collect();
                print_json(&json!({"name": profile.name, "properties": props}));
            } else {
                println!("# profile {}", profile.name);
                for (k, v) in &profile.properties {
                    println!("{k}={}", shown(k, v));
                }
            }
        }
        "delete" => {
            let name = args.positional(1, "profile name")?;
            load(&dir, name)?;
            let path = profile_path(&dir, name);
            std::fs::remove_file(&path)
                .map_err(|e| CliError::Other(format!("removing {}: {e}", path.display())))?;
            if current_name(&dir)?.as_deref() == Some(name) {
                std::fs::remove_file(dir.join(CURRENT)).map_err(|e| {
                    CliError::Other(format!("removing {}: {e}", dir.join(CURRENT).display()))
                })?;
            }
            if json_out {
                print_json(&json!({"profile": name, "deleted": true}));
            } else {
                println!("profile {name} deleted");
            }
        }
        other => {
            return Err(CliError::Usage(format!(
                "unknown profile subcommand {other:?}"
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_masking() {
        assert!(check_name("dev-1.local_x").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        let jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\" password=\"p w\";";
        let s = shown("sasl.jaas.config", jaas);
        assert!(
            !s.contains("p w") && s.contains("username=\"u\"") && s.ends_with(';'),
            "{s}"
        );
        assert_eq!(shown("ssl.key.password", "secret"), "[hidden]");
    }
}
