//! `kastle completion bash|zsh|fish`: shell completion scripts, generated
//! from the same flag specs and subcommand lists the commands parse with
//! (the CLI has its own small parser, not clap, so there is no
//! `clap_complete` to ask). Commands, subcommands, flags, the resource
//! type after `acl`/`config` subcommands, and the fixed values of a few
//! flags (`--operation`, `--pattern`, `--mechanism`...) are completed;
//! `--command-config` completes file names. zsh runs the bash function
//! through `bashcompinit`.

use super::{acl, config, consume, group, produce, profile, topic, user};
use super::{CliError, Flag, COMMANDS, COMMON_FLAGS};
use crate::security::acl::{AclOperation, ResourceType};

pub const SHELLS: &[&str] = &["bash", "zsh", "fish"];

/// What completes after one command.
struct Command {
    name: &'static str,
    subcommands: &'static [&'static str],
    /// Choices for the positional right after the subcommand.
    first_positional: Vec<String>,
    flags: &'static [Flag],
}

fn commands() -> Vec<Command> {
    let acl_types: Vec<String> = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
        ResourceType::DelegationToken,
        ResourceType::User,
        ResourceType::Any,
    ]
    .into_iter()
    .map(acl::type_name)
    .collect();
    let c = |name, subcommands, first_positional: &[&str], flags| Command {
        name,
        subcommands,
        first_positional: first_positional.iter().map(|s| s.to_string()).collect(),
        flags,
    };
    vec![
        c("topic", topic::SUBCOMMANDS, &[], topic::SPEC),
        c("produce", &[], &[], produce::SPEC),
        c("consume", &[], &[], consume::SPEC),
        c("group", group::SUBCOMMANDS, &[], group::SPEC),
        c("cluster", &["info"], &[], &[]),
        c(
            "config",
            config::SUBCOMMANDS,
            &["topic", "broker"],
            config::SPEC,
        ),
        Command {
            name: "acl",
            subcommands: acl::SUBCOMMANDS,
            first_positional: acl_types,
            flags: acl::SPEC,
        },
        c("user", user::SUBCOMMANDS, &[], user::SPEC),
        c("profile", profile::SUBCOMMANDS, &[], profile::SPEC),
        c("completion", &[], SHELLS, &[]),
    ]
}

/// The fixed values of a flag (by its canonical name), if it has some.
fn flag_values(command: &str, flag: &str) -> Option<Vec<String>> {
    let names = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
    match (command, flag) {
        ("acl", "--pattern") => names(&["literal", "prefixed", "match", "any"]),
        ("acl", "--permission") => names(&["allow", "deny", "any"]),
        ("acl", "--operation") => Some(
            (1..=15)
                .map(|c| {
                    AclOperation::from_code(c)
                        .name()
                        .to_ascii_lowercase()
                        .replace('_', "-")
                })
                .collect(),
        ),
        ("user", "-m") => names(&["SCRAM-SHA-256", "SCRAM-SHA-512"]),
        ("consume", "--format") => names(&["default", "value", "json"]),
        ("consume", "-o") => names(&["start", "end"]),
        _ => None,
    }
}

pub fn run(argv: &[String]) -> Result<(), CliError> {
    let shell = argv
        .first()
        .ok_or_else(|| CliError::Usage("kastle completion: bash|zsh|fish".into()))?;
    if argv.len() > 1 {
        return Err(CliError::Usage(format!(
            "unexpected argument {:?}",
            argv[1]
        )));
    }
    print!("{}", script(shell)?);
    Ok(())
}

pub fn script(shell: &str) -> Result<String, CliError> {
    match shell {
        "bash" => Ok(bash()),
        "zsh" => Ok(format!(
            "#compdef kastle\nautoload -U +X bashcompinit && bashcompinit\n{}",
            bash()
        )),
        "fish" => Ok(fish()),
        other => Err(CliError::Usage(format!(
            "shell {other:?}: expected bash, zsh or fish"
        ))),
    }
}

fn words(v: &[String]) -> String {
    v.join(" ")
}

fn all_flag_names(flags: &[Flag]) -> Vec<String> {
    flags
        .iter()
        .chain(COMMON_FLAGS)
        .flat_map(|f| f.names.iter().map(|n| n.to_string()))
        .collect()
}

fn bash() -> String {
    let mut top: Vec<String> = COMMANDS.iter().map(|c| c.to_string()).collect();
    top.push("health".into());
    let mut cases = String::new();
    for c in commands() {
        // A value flag: its fixed values, file names, or nothing to offer.
        let mut value_cases = String::new();
        for f in c.flags.iter().chain(COMMON_FLAGS).filter(|f| f.value) {
            let pattern = f.names.join("|");
            let reply = match flag_values(c.name, f.names[0]) {
                Some(vs) => format!("COMPREPLY=($(compgen -W \"{}\" -- \"$cur\"))", words(&vs)),
                None if f.names[0] == "--command-config" => {
                    "COMPREPLY=($(compgen -f -- \"$cur\"))".to_string()
                }
                None => "COMPREPLY=()".to_string(),
            };
            value_cases.push_str(&format!("                {pattern}) {reply}; return ;;\n"));
        }
        let subs: Vec<String> = c.subcommands.iter().map(|s| s.to_string()).collect();
        let mut positionals = String::new();
        if !subs.is_empty() {
            positionals.push_str(&format!(
                "            if [ \"$COMP_CWORD\" -eq 2 ]; then
                COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")); return
            fi
",
                words(&subs)
            ));
        }
        if !c.first_positional.is_empty() {
            // The word index of the positional after the subcommand.
            let at = if subs.is_empty() { 2 } else { 3 };
            positionals.push_str(&format!(
                "            if [ \"$COMP_CWORD\" -eq {at} ] && [[ \"$cur\" != -* ]]; then
                COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")); return
            fi
",
                words(&c.first_positional)
            ));
        }
        cases.push_str(&format!(
            "        {name})
            case \"$prev\" in
{value_cases}            esac
{positionals}            if [[ \"$cur\" == -* ]]; then
                COMPREPLY=($(compgen -W \"{flags}\" -- \"$cur\"))
            fi
            ;;
",
            name = c.name,
            flags = words(&all_flag_names(c.flags)),
        ));
    }
    format!(
        "# kastle completion for bash (kastle completion bash > /etc/bash_completion.d/kastle)
_kastle() {{
    local cur=\"${{COMP_WORDS[COMP_CWORD]}}\" prev=\"${{COMP_WORDS[COMP_CWORD-1]}}\"
    COMPREPLY=()
    if [ \"$COMP_CWORD\" -eq 1 ]; then
        COMPREPLY=($(compgen -W \"{top}\" -- \"$cur\")); return
    fi
    case \"${{COMP_WORDS[1]}}\" in
{cases}    esac
}}
complete -F _kastle kastle
",
        top = words(&top),
    )
}

fn fish() -> String {
    let mut top: Vec<String> = COMMANDS.iter().map(|c| c.to_string()).collect();
    top.push("health".into());
    let mut out = String::from(
        "# kastle completion for fish (kastle completion fish > ~/.config/fish/completions/kastle.fish)
function __kastle_command
    set -l t (commandline -opc)
    test (count $t) -ge 2; and test \"$t[2]\" = $argv[1]
end
function __kastle_at
    set -l t (commandline -opc)
    test (count $t) -eq $argv[2]; and test \"$t[2]\" = $argv[1]
end
complete -c kastle -f
",
    );
    out.push_str(&format!(
        "complete -c kastle -n 'test (count (commandline -opc)) -eq 1' -a '{}'\n",
        words(&top)
    ));
    for c in commands() {
        let subs: Vec<String> = c.subcommands.iter().map(|s| s.to_string()).collect();
        if !subs.is_empty() {
            out.push_str(&format!(
                "complete -c kastle -n '__kastle_at {} 2' -a '{}'\n",
                c.name,
                words(&subs)
            ));
        }
        if !c.first_positional.is_empty() {
            let at = if subs.is_empty() { 2 } else { 3 };
            out.push_str(&format!(
                "complete -c kastle -n '__kastle_at {} {at}' -a '{}'\n",
                c.name,
                words(&c.first_positional)
            ));
        }
        for f in c.flags.iter().chain(COMMON_FLAGS) {
            let mut line = format!("complete -c kastle -n '__kastle_command {}'", c.name);
            for n in f.names {
                match n.strip_prefix("--") {
                    Some(long) => line.push_str(&format!(" -l {long}")),
                    None => line.push_str(&format!(" -s {}", n.trim_start_matches('-'))),
                }
            }
            if f.value {
                match flag_values(c.name, f.names[0]) {
                    Some(vs) => line.push_str(&format!(" -x -a '{}'", words(&vs))),
                    None if f.names[0] == "--command-config" => line.push_str(" -r -F"),
                    None => line.push_str(" -x"),
                }
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_and_flag_is_in_each_script() {
        for shell in SHELLS {
            let s = script(shell).unwrap();
            for c in COMMANDS {
                assert!(s.contains(c), "{shell}: {c}");
            }
            for c in commands() {
                for f in c.flags.iter().flat_map(|f| f.names) {
                    let long = f.trim_start_matches('-');
                    assert!(s.contains(long), "{shell}: {} {f}", c.name);
                }
            }
        }
        assert!(script("tcsh").is_err());
    }

    #[test]
    fn the_usage_lists_each_subcommand_completed() {
        for c in commands() {
            for s in c.subcommands {
                let line = format!("kastle {} {s}", c.name);
                assert!(super::super::USAGE.contains(&line), "{line}");
            }
        }
    }
}
