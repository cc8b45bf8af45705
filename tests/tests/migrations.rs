//! Every schema change rolls back: all the way down leaves no table of ours, and the way
//! back up gives a schema the service works on again.

use std::collections::BTreeSet;

use api_tests::{
    Backend, StatusCode, TestApp, expect_json, expect_problem, id_of, on_both_backends, query_i64,
    query_i64s, query_strings,
};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use service::events::EventKind;

async fn tables(app: &TestApp, db: &DatabaseConnection) -> Vec<String> {
    let sql = match app.backend {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
             ORDER BY tablename"
        }
    };
    query_strings(db, sql).await
}

async fn every_migration_rolls_back_and_applies_again(app: TestApp) {
    let db = app.database().await;
    let ours = ["login_failures", "posts", "users", "votes"];
    let applied = tables(&app, &db).await;
    for table in ours {
        assert!(applied.iter().any(|t| t == table), "{table} in {applied:?}");
    }

    Migrator::down(&db, None)
        .await
        .expect("every migration rolls back");
    let left = tables(&app, &db).await;
    assert!(
        left.iter().all(|t| !ours.contains(&t.as_str())),
        "no table of ours is left after rolling everything back: {left:?}"
    );

    Migrator::up(&db, None)
        .await
        .expect("every migration applies again");
    assert_eq!(
        tables(&app, &db).await,
        applied,
        "the same tables as before"
    );
    let user = app.create_user_and_login().await;
    let response = app.get("/posts", Some(&user.token)).await;
    expect_json(response, StatusCode::OK, "listing on the re-created schema").await;
}

async fn the_look_alike_keys_are_made_for_existing_accounts(app: TestApp) {
    let db = app.database().await;
    // Back to before the keys, with accounts of that time: one stored with fullwidth
    // letters, as registering kept them then.
    roll_back_through(&db, "m20261207_000015_email_skeletons").await;
    for email in ["victim@example.org", "\u{ff56}ictor@example.org"] {
        db.execute_unprepared(&format!(
            "INSERT INTO users (email, password_hash, created_at) \
             VALUES ('{email}', 'not a hash', CURRENT_TIMESTAMP)"
        ))
        .await
        .expect("an account of the older schema");
    }
    Migrator::up(&db, None)
        .await
        .expect("the migration applies");

    let stored = query_strings(&db, "SELECT email FROM users ORDER BY id").await;
    assert_eq!(stored, ["victim@example.org", "victor@example.org"]);
    let keys = query_strings(&db, "SELECT email_skeleton FROM users ORDER BY id").await;
    assert!(keys.iter().all(|key| key.len() == 64), "{keys:?}");
    let response = app
        .register("victim@\u{435}xample.org", "correct horse battery")
        .await;
    expect_problem(
        response,
        StatusCode::CONFLICT,
        "a look-alike of an older account",
    )
    .await;
}

/// Rolls back `name` and every migration after it.
async fn roll_back_through(db: &DatabaseConnection, name: &str) {
    let since = Migrator::migrations()
        .iter()
        .rev()
        .position(|migration| migration.name() == name)
        .unwrap_or_else(|| panic!("the migration {name}"))
        + 1;
    Migrator::down(db, Some(since as u32))
        .await
        .unwrap_or_else(|err| panic!("the migrations since {name} roll back: {err}"));
}

async fn existing_accounts_replay_what_was_recorded_since_they_were_created(app: TestApp) {
    let owner = app.create_user_and_login().await;
    for title in ["One", "Two"] {
        app.new_post(&owner, title, true).await;
    }
    let db = app.database().await;
    roll_back_through(&db, "m20261207_000018_replay_starts").await;
    for (email, created_at) in [
        ("older@example.org", "2000-01-01 00:00:00+00:00"),
        ("newer@example.org", "2100-01-01 00:00:00+00:00"),
    ] {
        db.execute_unprepared(&format!(
            "INSERT INTO users (email, password_hash, created_at) \
             VALUES ('{email}', 'not a hash', '{created_at}')"
        ))
        .await
        .expect("an account of the older schema");
    }
    Migrator::up(&db, None)
        .await
        .expect("the migration applies");

    let (first, last) = (
        query_i64(&db, "SELECT MIN(id) FROM events").await,
        query_i64(&db, "SELECT MAX(id) FROM events").await,
    );
    assert!(first < last, "the posts' events: {first}..{last}");
    let starts = query_i64s(
        &db,
        "SELECT last_event_before FROM users \
         WHERE email IN ('older@example.org', 'newer@example.org') ORDER BY email DESC",
    )
    .await;
    assert_eq!(
        starts,
        [first - 1, last],
        "older: replayed every event; newer: none of those before it"
    );
}

async fn existing_accounts_get_random_handles_and_their_events_lose_the_email(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let post = id_of(&app.new_post(&owner, "Before handles", true).await);
    let db = app.database().await;
    roll_back_through(&db, "m20261207_000019_profiles").await;
    let emails = query_strings(
        &db,
        "SELECT owner_email FROM events WHERE owner_email IS NOT NULL",
    )
    .await;
    assert_eq!(
        emails,
        std::slice::from_ref(&owner.email),
        "the older events carry the email"
    );
    for email in ["ann.lee@example.org", "bob@example.org"] {
        db.execute_unprepared(&format!(
            "INSERT INTO users (email, password_hash, created_at) \
             VALUES ('{email}', 'not a hash', CURRENT_TIMESTAMP)"
        ))
        .await
        .expect("an account of the older schema");
    }
    Migrator::up(&db, None)
        .await
        .expect("the migration applies");

    let handles = query_strings(&db, "SELECT handle FROM users ORDER BY id").await;
    assert_eq!(handles.len(), 3, "{handles:?}");
    for handle in &handles {
        let random = handle.strip_prefix("user_").unwrap_or_default();
        assert!(
            random.len() == 12 && random.bytes().all(|b| b.is_ascii_hexdigit()),
            "user_ and random hex: {handle}"
        );
    }
    let distinct: BTreeSet<&String> = handles.iter().collect();
    assert_eq!(distinct.len(), handles.len(), "{handles:?}");
    let recorded = query_strings(
        &db,
        "SELECT owner_handle FROM events WHERE kind = 'post.created'",
    )
    .await;
    assert_eq!(
        recorded,
        handles[..1],
        "the older event names the owner by handle"
    );

    let reader = app.create_user_and_login().await;
    let seen = expect_json(
        app.get(&format!("/posts/{post}"), Some(&reader.token))
            .await,
        StatusCode::OK,
        "the older post",
    )
    .await;
    assert_eq!(seen["owner"]["handle"], handles[0]);
    assert!(seen["owner"].get("email").is_none(), "{seen}");
}

/// The kinds of event the triggers write into the outbox, read from their stored text: each
/// row they insert begins with its kind, as `SELECT 'kind', …` or `VALUES ('kind', …`.
async fn recorded_kinds(app: &TestApp, db: &DatabaseConnection) -> BTreeSet<String> {
    let sql = match app.backend {
        Backend::Sqlite => "SELECT sql FROM sqlite_master WHERE type = 'trigger'",
        Backend::Postgres => {
            "SELECT p.prosrc FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid \
             JOIN pg_class c ON c.oid = t.tgrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND NOT t.tgisinternal"
        }
    };
    let mut kinds = BTreeSet::new();
    for text in query_strings(db, sql).await {
        for opening in ["SELECT '", "VALUES ('"] {
            for (at, _) in text.match_indices(opening) {
                let rest = &text[at + opening.len()..];
                if let Some(end) = rest.find('\'') {
                    kinds.insert(rest[..end].to_owned());
                }
            }
        }
    }
    kinds
}

async fn the_triggers_record_exactly_the_kinds_of_event_the_service_reads(app: TestApp) {
    let db = app.database().await;
    let known: BTreeSet<String> = EventKind::ALL
        .into_iter()
        .map(|kind| kind.name().to_owned())
        .collect();
    assert_eq!(recorded_kinds(&app, &db).await, known);
}

async fn existing_addresses_start_unverified_unless_the_operator_trusts_them(app: TestApp) {
    let db = app.database().await;
    for _ in 0..2 {
        app.create_user_and_login().await;
    }
    let verified = "SELECT COUNT(*) FROM users WHERE email_verified";
    for trust_existing_emails in [false, true, false] {
        roll_back_through(&db, "m20261207_000020_mail_outbox").await;
        let options = migration::Options {
            trust_existing_emails,
        };
        migration::with_options(options, Migrator::up(&db, None))
            .await
            .expect("the migration applies");
        let expected = if trust_existing_emails { 2 } else { 0 };
        assert_eq!(
            query_i64(&db, verified).await,
            expected,
            "trusting existing addresses: {trust_existing_emails}"
        );
    }
}

async fn the_limits_keep_counting_across_the_change_of_their_table(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, |settings| {
        settings.register_max_per_address = 10;
    })
    .await;
    let db = app.database().await;
    for _ in 0..3 {
        app.create_user_and_login().await;
    }
    let counted = "SELECT COUNT(*) FROM limit_hits WHERE policy = 'registrations'";
    assert_eq!(query_i64(&db, counted).await, 3, "a registration each");
    roll_back_through(&db, "m20261207_000022_limit_hits").await;
    assert_eq!(
        query_i64(&db, "SELECT COUNT(*) FROM registrations").await,
        3,
        "carried back"
    );
    Migrator::up(&db, None)
        .await
        .expect("the migration applies");
    assert_eq!(query_i64(&db, counted).await, 3, "carried over again");
}

on_both_backends!(
    existing_addresses_start_unverified_unless_the_operator_trusts_them,
    the_limits_keep_counting_across_the_change_of_their_table,
    every_migration_rolls_back_and_applies_again,
    the_look_alike_keys_are_made_for_existing_accounts,
    existing_accounts_replay_what_was_recorded_since_they_were_created,
    the_triggers_record_exactly_the_kinds_of_event_the_service_reads,
    existing_accounts_get_random_handles_and_their_events_lose_the_email,
);
