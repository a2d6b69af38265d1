//! `kastle profile`: a profile carries the bootstrap servers and the
//! client security properties, is chosen by `--profile`, `KASTLE_PROFILE`
//! or `kastle profile use`, and loses to `-b` and `--command-config`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs the CLI with its profiles in `config_dir` and no
/// `KASTLE_BOOTSTRAP`: (exit code, stdout, stderr).
fn cli(config_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kastle"))
        .args(args)
        .env_remove("KASTLE_BOOTSTRAP")
        .env_remove("KASTLE_PROFILE")
        .env("KASTLE_CONFIG_DIR", config_dir)
        .envs(env.iter().copied())
        .output()
        .expect("run kastle cli");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn ok_json(config_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let (code, out, err) = cli(config_dir, env, &args);
    assert_eq!(code, 0, "kastle {args:?}: exit {code}\n{out}\n{err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

#[test]
fn profiles_carry_bootstrap_and_security_and_lose_to_flags() {
    let (b, sasl_port) = crate::sasl::sasl_broker(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("config");
    let props = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write client properties");
        path.to_string_lossy().into_owned()
    };
    let sasl = props(
        "sasl.properties",
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n\
         sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
         username=\"alice\" password=\"alice-secret\";\n",
    );
    let plain = props("plain.properties", "security.protocol=PLAINTEXT\n");
    let sasl_bootstrap = format!("127.0.0.1:{sasl_port}");

    let created = ok_json(
        &home,
        &[],
        &[
            "profile",
            "create",
            "dev",
            "-b",
            &sasl_bootstrap,
            "--command-config",
            &sasl,
            "-X",
            "client.id=cli-test",
        ],
    );
    let file = created["path"].as_str().expect("path");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file)
            .expect("profile file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "a profile may hold passwords");
    }
    // Exists: replaced only with --force.
    let (code, _, err) = cli(&home, &[], &["profile", "create", "dev", "-b", "x:1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--force"), "{err}");

    // Not current yet: chosen by --profile or KASTLE_PROFILE.
    let list = ok_json(&home, &[], &["profile", "list"]);
    assert_eq!(list[0]["name"], "dev", "{list}");
    assert_eq!(list[0]["current"], false, "{list}");
    assert_eq!(list[0]["bootstrap_servers"], sasl_bootstrap.as_str());
    let info = ok_json(&home, &[], &["cluster", "info", "--profile", "dev"]);
    assert_eq!(info["brokers"][0]["port"], sasl_port, "{info}");
    let info = ok_json(&home, &[("KASTLE_PROFILE", "dev")], &["cluster", "info"]);
    assert_eq!(info["brokers"][0]["port"], sasl_port, "{info}");

    // `use` makes it the default of every command.
    ok_json(&home, &[], &["profile", "use", "dev"]);
    let topics = ok_json(&home, &[], &["topic", "list"]);
    assert!(topics.is_array(), "{topics}");
    let info = ok_json(&home, &[], &["cluster", "info"]);
    assert_eq!(info["brokers"][0]["port"], sasl_port, "{info}");

    // -b and --command-config win over the profile: the plaintext listener.
    let plain_bootstrap = format!("127.0.0.1:{}", b.port);
    let info = ok_json(
        &home,
        &[],
        &[
            "cluster",
            "info",
            "-b",
            &plain_bootstrap,
            "--command-config",
            &plain,
        ],
    );
    assert_eq!(info["brokers"][0]["port"], b.port, "{info}");
    // -b alone keeps the profile's SASL settings, which the plaintext
    // listener does not speak.
    let (code, _, _) = cli(&home, &[], &["topic", "list", "-b", &plain_bootstrap]);
    assert_eq!(code, 1);

    // show masks the password.
    let shown = ok_json(&home, &[], &["profile", "show"]);
    let jaas = shown["properties"]["sasl.jaas.config"]
        .as_str()
        .expect("jaas shown");
    assert!(
        !jaas.contains("alice-secret") && jaas.contains("[hidden]"),
        "{jaas}"
    );
    assert_eq!(shown["properties"]["client.id"], "cli-test");

    // A profile that does not exist is a usage error.
    let (code, _, err) = cli(&home, &[("KASTLE_PROFILE", "nope")], &["topic", "list"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no profile \"nope\""), "{err}");
    let (code, _, _) = cli(&home, &[], &["profile", "create", "../x", "-b", "h:1"]);
    assert_eq!(code, 2);

    // delete also forgets it as the current one.
    ok_json(&home, &[], &["profile", "delete", "dev"]);
    assert_eq!(
        ok_json(&home, &[], &["profile", "list"]),
        Value::Array(vec![])
    );
    assert!(!home.join("current-profile").exists());
}
