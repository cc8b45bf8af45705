//! The `api` binary's command line, run as a process.

use std::process::{Command, Output};

use crate::support::{BINARY, temp_dir};

fn api(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(BINARY)
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
    for command in ["serve", "migrate", "admin", "openapi", "seed"] {
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
    let dir = temp_dir("cli-seed");
    let url = format!("sqlite://{}/seed.db?mode=rwc", dir.path().display());
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
}

/// Settings the tests below set themselves, cleared from the inherited environment.
const CLEARED: &[&str] = &[
    "APP_ENV",
    "SECRET_KEY",
    "DATABASE_URL",
    "TRUSTED_PROXIES",
    "PORT",
    "HOST",
    "MIGRATE_ON_START",
    "SMTP_URL",
    "MAIL_FROM",
    "PUBLIC_URL",
];

/// Runs the binary in `dir` with `envs`, and kills it if it has not exited within `limit`
/// (as a service that starts when it should not would not): `None` then.
fn api_in(
    dir: &std::path::Path,
    args: &[&str],
    envs: &[(&str, &str)],
    limit: std::time::Duration,
) -> Option<Output> {
    let mut command = Command::new(BINARY);
    command.current_dir(dir).args(args);
    for name in CLEARED {
        command.env_remove(name);
    }
    let mut child = command
        .envs(envs.iter().copied())
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the api binary runs");
    let started = std::time::Instant::now();
    while child
        .try_wait()
        .expect("the child can be waited for")
        .is_none()
    {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Some(child.wait_with_output().expect("the output is read"))
}

const EXAMPLE_SECRET: &str = "CHANGE-ME-TO-64-HEX-CHARACTERS-FROM-OPENSSL-RAND-HEX-32-XXXXXXXXXX";

#[test]
fn production_refuses_the_examples_placeholder_and_guessable_secrets_from_every_layer() {
    let dir = temp_dir("cli-secret");
    let url = format!("sqlite://{}/app.db?mode=rwc", dir.path().display());
    let base = [
        ("APP_ENV", "production"),
        ("DATABASE_URL", url.as_str()),
        ("PORT", "0"),
    ];
    let placeholder = "change-me-to-a-long-random-secret-key-please";
    for (layer, secret) in [
        ("the environment", EXAMPLE_SECRET),
        ("the environment", placeholder),
        // Long enough and no placeholder, but words and a sequence: zxcvbn's score 1.
        ("the environment", "passwordpasswordpassword123456789"),
        (".env", EXAMPLE_SECRET),
        ("config.toml", EXAMPLE_SECRET),
    ] {
        let _ = std::fs::remove_file(dir.path().join(".env"));
        let _ = std::fs::remove_file(dir.path().join("config.toml"));
        let mut envs = base.to_vec();
        match layer {
            ".env" => {
                std::fs::write(dir.path().join(".env"), format!("SECRET_KEY={secret}\n")).unwrap()
            }
            "config.toml" => {
                std::fs::write(
                    dir.path().join("config.toml"),
                    format!("secret_key = \"{secret}\"\n"),
                )
                .unwrap();
            }
            _ => envs.push(("SECRET_KEY", secret)),
        }
        let out = api_in(dir.path(), &[], &envs, std::time::Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{layer}: the service started with {secret}"));
        assert!(!out.status.success(), "{layer}: {secret}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("SECRET_KEY") && stderr.contains("openssl rand -hex 32"),
            "{layer}: {stderr}"
        );
    }
}

#[test]
fn production_refuses_to_start_without_smtp_url_mail_from_and_public_url() {
    let dir = temp_dir("cli-mail");
    let url = format!("sqlite://{}/app.db?mode=rwc", dir.path().display());
    let secret = "cef8df35dd735642589c08ba64bae6e8ad8ed027b773349f6ead0ddd7ff6fb70";
    let base = [
        ("APP_ENV", "production"),
        ("DATABASE_URL", url.as_str()),
        ("PORT", "0"),
        ("SECRET_KEY", secret),
    ];
    for (given, missing) in [
        (&[][..], &["SMTP_URL", "MAIL_FROM", "PUBLIC_URL"][..]),
        (
            &[
                ("SMTP_URL", "smtp://127.0.0.1:1"),
                ("MAIL_FROM", "noreply@example.org"),
            ][..],
            &["PUBLIC_URL"][..],
        ),
        (
            &[("PUBLIC_URL", "https://example.org")][..],
            &["SMTP_URL", "MAIL_FROM"][..],
        ),
    ] {
        let mut envs = base.to_vec();
        envs.extend_from_slice(given);
        let out = api_in(dir.path(), &[], &envs, std::time::Duration::from_secs(20))
            .unwrap_or_else(|| panic!("the service started without {missing:?}"));
        assert!(!out.status.success(), "{missing:?}");
        let stderr = text(&out.stderr);
        for name in missing {
            assert!(stderr.contains(name), "{missing:?}: {stderr}");
        }
        assert!(stderr.contains("APP_ENV=production requires"), "{stderr}");
    }
}

#[test]
fn the_environment_overrides_dotenv_and_dotenv_overrides_the_defaults() {
    let dir = temp_dir("cli-layers");
    let url = |name: &str| format!("sqlite://{}/{name}.db?mode=rwc", dir.path().display());
    std::fs::write(
        dir.path().join(".env"),
        format!("DATABASE_URL={}\n", url("from-dotenv")),
    )
    .unwrap();
    let from_env = url("from-env");
    let limit = std::time::Duration::from_secs(60);
    let out = api_in(
        dir.path(),
        &["migrate", "status"],
        &[("DATABASE_URL", &from_env)],
        limit,
    )
    .expect("migrate status ends");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        dir.path().join("from-env.db").exists(),
        "the environment's URL was used"
    );
    assert!(
        !dir.path().join("from-dotenv.db").exists(),
        ".env overrode the environment"
    );

    let out = api_in(dir.path(), &["migrate", "status"], &[], limit).expect("migrate status ends");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        dir.path().join("from-dotenv.db").exists(),
        ".env applies where the environment is silent"
    );
}

/// A password in `DATABASE_URL` never reaches the output, whether the URL does not parse
/// (a `/` or `#` in the password), names no driver, or points nowhere; for serving,
/// migrating and seeding alike, logging at `debug`.
#[test]
fn no_database_error_shows_the_urls_password() {
    let dir = temp_dir("cli-url");
    const MARKER: &str = "Xq7-marker-pw";
    let urls = [
        format!("postgres://social:{MARKER}/x#y@127.0.0.1:5432/social"),
        format!("postgres://social:{MARKER}#frag@127.0.0.1:5432/social"),
        format!("postgress://social:{MARKER}@127.0.0.1:5432/social"),
        format!("postgres://social:{MARKER}@127.0.0.1:1/social"),
        format!("postgres://social:{MARKER}%2Fenc@127.0.0.1:1/social"),
    ];
    for url in &urls {
        for args in [&[][..], &["migrate", "status"], &["seed", "--users", "1"]] {
            let envs = [
                ("DATABASE_URL", url.as_str()),
                ("PORT", "0"),
                ("DATABASE_ACQUIRE_TIMEOUT_SECONDS", "2"),
            ];
            let out = api_in(dir.path(), args, &envs, std::time::Duration::from_secs(30))
                .unwrap_or_else(|| panic!("{args:?} with {url}: still running"));
            assert!(!out.status.success(), "{args:?} with {url}");
            let output = format!("{}{}", text(&out.stdout), text(&out.stderr));
            assert!(
                !output.contains(MARKER) && !output.contains("marker"),
                "{args:?} with {url} shows the password:\n{output}"
            );
            assert!(output.contains("DATABASE_URL"), "{args:?}: {output}");
        }
    }
}

/// An entry of `TRUSTED_PROXIES` that is neither an address nor a range stops the start
/// with one line naming it, before the port is bound (it is taken here, so binding first
/// would fail differently) and before the database is opened.
#[test]
fn an_unparsable_trusted_proxy_stops_the_start_before_binding() {
    let dir = temp_dir("cli-proxies");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let url = format!("sqlite://{}/app.db?mode=rwc", dir.path().display());
    let envs = [
        ("DATABASE_URL", url.as_str()),
        ("PORT", port.as_str()),
        ("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/33"),
    ];
    let out = api_in(dir.path(), &[], &envs, std::time::Duration::from_secs(20))
        .expect("the service did not start");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("TRUSTED_PROXIES") && errors[0].contains("10.0.0.0/33"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("app.db").exists(),
        "the database was opened first"
    );

    let envs = [
        ("DATABASE_URL", url.as_str()),
        ("PORT", "0"),
        ("TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/8,::1,fd00::/8"),
        ("MIGRATE_ON_START", "true"),
    ];
    let started = api_in(dir.path(), &[], &envs, std::time::Duration::from_secs(5));
    assert!(
        started.is_none(),
        "ranges are accepted: {:?}",
        started.map(|o| text(&o.stderr))
    );
}

/// `api admin grant` and `revoke` on `backend`: on a running service, the role counts from
/// the next request; on a stopped one, from its start; each change is in the moderation log
/// as the command line's.
async fn admin_gives_and_takes_roles(backend: api_tests::Backend) {
    use api_tests::{StatusCode, TestDatabase, expect_json, expect_problem};

    use crate::support::Service;

    let Some(database) = TestDatabase::create_or_skip(backend).await else {
        return;
    };
    let envs = [("DATABASE_URL", database.url()), ("BCRYPT_COST", "4")];
    let mut service = Service::start(&envs);
    let user = service.api.create_user_and_login().await;
    let me = |service: &Service, token: &str| {
        let (api, token) = (service.api.clone(), token.to_owned());
        async move {
            expect_json(
                api.get("/users/me", Some(&token)).await,
                StatusCode::OK,
                "me",
            )
            .await
        }
    };

    let out = api(&["admin", "grant", &user.email, "admin"], &envs);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("member → admin"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        me(&service, &user.token).await["role"],
        "admin",
        "at the next request"
    );
    let out = api(&["admin", "grant", &user.email, "admin"], &envs);
    assert!(
        text(&out.stdout).contains("already"),
        "{}",
        text(&out.stdout)
    );
    let entries = expect_json(
        service.api.get("/moderation/log", Some(&user.token)).await,
        StatusCode::OK,
        "the log",
    )
    .await;
    assert_eq!(
        entries.as_array().map(Vec::len),
        Some(1),
        "one change: {entries}"
    );
    assert!(
        entries[0].get("actor_id").is_none(),
        "the command line's: {entries}"
    );
    assert_eq!(entries[0]["role"], "admin");

    // Stopped, then started again: the role taken meanwhile is gone.
    service.signal("TERM");
    service.wait_for_exit(std::time::Duration::from_secs(30));
    let out = api(&["admin", "revoke", &user.email], &envs);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("admin → member"),
        "{}",
        text(&out.stdout)
    );
    let service = Service::start(&envs);
    let token = service.api.login(&user.email, &user.password).await;
    assert_eq!(me(&service, &token).await["role"], "member");
    expect_problem(
        service.api.get("/moderation/log", Some(&token)).await,
        StatusCode::FORBIDDEN,
        "a member again",
    )
    .await;

    for (args, says) in [
        (
            &["admin", "grant", "nobody@example.org", "admin"][..],
            "no account",
        ),
        (&["admin", "grant", "ann", "admin"], "email"),
    ] {
        let out = api(args, &envs);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let out = api(&["admin", "grant", &user.email, "owner"], &envs);
    assert_eq!(
        out.status.code(),
        Some(2),
        "not a role: {}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_gives_and_takes_roles_on_sqlite() {
    admin_gives_and_takes_roles(api_tests::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_gives_and_takes_roles_on_postgres() {
    admin_gives_and_takes_roles(api_tests::Backend::Postgres).await;
}
