//! Command-line parsing shared by the kastle-perf subcommands.
//!
//! Kafka's perf tools take `--flag value` pairs and a few multi-valued flags
//! (`--producer-props k=v k=v ...`), so a flag collects every following
//! argument up to the next `--flag`. Unknown flags are an error so a typo
//! cannot silently run a different benchmark.

use std::collections::BTreeMap;
use std::str::FromStr;

pub struct Args {
    cmd: String,
    flags: BTreeMap<String, Vec<String>>,
}

impl Args {
    /// Parses `argv` (without the program name and subcommand) and rejects
    /// any flag not in `known`.
    pub fn parse(cmd: &str, argv: &[String], known: &[&str]) -> Result<Args, String> {
        let mut flags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut current: Option<String> = None;
        for a in argv {
            if let Some(name) = a.strip_prefix("--") {
                // `--flag=value` is accepted as well as `--flag value`
                let (name, inline) = match name.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (name, None),
                };
                if !known.contains(&name) {
                    return Err(format!(
                        "{cmd}: unknown option --{name} (known: --{})",
                        known.join(", --")
                    ));
                }
                let values = flags.entry(name.to_string()).or_default();
                values.extend(inline);
                current = Some(name.to_string());
            } else {
                match &current {
                    Some(name) => flags.entry(name.clone()).or_default().push(a.clone()),
                    None => return Err(format!("{cmd}: unexpected argument {a:?}")),
                }
            }
        }
        Ok(Args {
            cmd: cmd.to_string(),
            flags,
        })
    }

    pub fn has(&self, name: &str) -> bool {
        self.flags.contains_key(name)
    }

    /// The single value of `--name`, if given.
    pub fn opt_str(&self, name: &str) -> Result<Option<String>, String> {
        match self.flags.get(name) {
            None => Ok(None),
            Some(v) if v.len() == 1 => Ok(Some(v[0].clone())),
            Some(v) => Err(format!(
                "{}: --{name} takes exactly one value, got {}",
                self.cmd,
                v.len()
            )),
        }
    }

    pub fn str(&self, name: &str) -> Result<String, String> {
        self.opt_str(name)?
            .ok_or_else(|| format!("{}: --{name} is required", self.cmd))
    }

    pub fn opt<T: FromStr>(&self, name: &str) -> Result<Option<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(s) => s
                .parse::<T>()
                .map(Some)
                .map_err(|e| format!("{}: --{name} {s:?}: {e}", self.cmd)),
        }
    }

    pub fn get<T: FromStr>(&self, name: &str) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        self.opt(name)?
            .ok_or_else(|| format!("{}: --{name} is required", self.cmd))
    }

    pub fn get_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        Ok(self.opt(name)?.unwrap_or(default))
    }

    /// `k=v` pairs of a multi-valued flag such as `--producer-props`.
    pub fn props(&self, name: &str) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        for kv in self.flags.get(name).map(Vec::as_slice).unwrap_or(&[]) {
            match kv.split_once('=') {
                Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
                _ => {
                    return Err(format!(
                        "{}: --{name} expects key=value, got {kv:?}",
                        self.cmd
                    ))
                }
            }
        }
        Ok(out)
    }
}
