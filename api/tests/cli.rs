//! The `api` binary's command line, run as a process.

use std::process::{Command, Output};

fn api(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_api"))
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .expect("the api binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn version_prints_the_package_version() {
    let out = api(&["--version"], &[]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("api {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_every_command() {
    let out = api(&["--help"], &[]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for command in ["serve", "migrate", "openapi", "seed"] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
}

#[test]
fn bad_arguments_give_one_line_and_exit_2() {
    for args in [
        &["--bogus"][..],
        &["migrate", "sideways"],
        &["seed", "--users", "many"],
    ] {
        let out = api(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn openapi_prints_the_committed_spec() {
    let out = api(&["openapi"], &[]);
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml"))
            .expect("openapi.yaml at the project root");
    assert!(
        text(&out.stdout) == committed,
        "`api openapi` differs from openapi.yaml"
    );
    let json = api(&["openapi", "--json"], &[]);
    let spec: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(spec["openapi"], "3.0.0");
}

#[test]
fn seed_and_migrate_work_on_a_fresh_sqlite_file() {
    let dir = std::env::temp_dir().join(format!("api-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/seed.db?mode=rwc", dir.display());
    let envs = [("DATABASE_URL", url.as_str()), ("BCRYPT_COST", "4")];

    let out = api(
        &["seed", "--users", "20", "--posts", "100", "--votes", "300"],
        &envs,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("seeded 20 users, 100 posts, 300 votes"));

    let out = api(&["migrate", "status"], &envs);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = text(&out.stdout);
    assert_eq!(
        status.lines().count(),
        <migration::Migrator as migration::MigratorTrait>::migrations().len(),
        "{status}"
    );
    assert!(
        status.lines().all(|line| line.starts_with("Applied")),
        "{status}"
    );

    let out = api(&["migrate", "down"], &envs);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("Pending"))
            .count(),
        1
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
