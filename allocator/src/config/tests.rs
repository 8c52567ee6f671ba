//! The configuration's loading and checks, through [`Config::load_from`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use lablink_schema::connection::DatabaseLocation;

use super::*;
use std::io::Write;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn yaml(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("temp file");
    file.write_all(text.as_bytes()).expect("write");
    file
}

#[test]
fn nothing_set_means_sqlite_on_localhost_5000() {
    let config = Config::load_from(None, None, &[]).expect("defaults");
    assert_eq!(config.server.bind.to_string(), "127.0.0.1:5000");
    assert_eq!(
        config.database.location(),
        Ok(DatabaseLocation::SqliteFile(PathBuf::from(
            "lablink-data/lablink.sqlite"
        )))
    );
    assert_eq!(config.log.format, LogFormat::Auto);
}

#[test]
fn layers_apply_in_order_defaults_file_environment_flag() {
    let file = yaml("server:\n  bind: 0.0.0.0:8000\n  workers: 3\ndatabase:\n  pool_size: 20\n");
    let from_file = Config::load_from(Some(file.path()), None, &[]).expect("file");
    assert_eq!(from_file.server.bind.to_string(), "0.0.0.0:8000");
    assert_eq!(from_file.server.workers, 3);
    assert_eq!(from_file.database.pool_size, 20);

    let vars = env(&[
        ("LABLINK__SERVER__BIND", "127.0.0.1:7000"),
        ("LABLINK__LOG__FORMAT", "text"),
    ]);
    let from_env = Config::load_from(Some(file.path()), None, &vars).expect("env");
    assert_eq!(from_env.server.bind.to_string(), "127.0.0.1:7000");
    assert_eq!(
        from_env.server.workers, 3,
        "file values not overridden stay"
    );
    assert_eq!(from_env.log.format, LogFormat::Text);

    let flag: SocketAddr = "127.0.0.1:6000".parse().expect("addr");
    let from_flag = Config::load_from(Some(file.path()), Some(flag), &vars).expect("flag");
    assert_eq!(from_flag.server.bind, flag);
}

#[test]
fn config_file_can_come_from_lablink_config() {
    let file = yaml("server:\n  workers: 5\n");
    let path = file.path().display().to_string();
    let config = Config::load_from(None, None, &env(&[("LABLINK_CONFIG", &path)])).expect("file");
    assert_eq!(config.server.workers, 5);
}

#[test]
fn database_url_selects_postgres_and_the_prefixed_key_wins() {
    let config = Config::load_from(None, None, &env(&[("DATABASE_URL", "postgres://a@h/one")]))
        .expect("url");
    assert_eq!(
        config.database.location(),
        Ok(DatabaseLocation::Postgres("postgres://a@h/one".into()))
    );
    let config = Config::load_from(
        None,
        None,
        &env(&[
            ("DATABASE_URL", "postgres://a@h/one"),
            ("LABLINK__DATABASE__URL", "postgres://a@h/two"),
        ]),
    )
    .expect("url");
    assert_eq!(config.database.url.as_deref(), Some("postgres://a@h/two"));
}

#[test]
fn environment_values_are_kept_exactly_as_written() {
    let config = Config::load_from(None, None, &env(&[("LABLINK__DATABASE__DATA_DIR", "007")]))
        .expect("numeric-looking string");
    assert_eq!(config.database.data_dir, PathBuf::from("007"));
}

#[test]
fn an_empty_variable_counts_as_unset() {
    let config = Config::load_from(
        None,
        None,
        &env(&[
            ("LABLINK__ADMIN__PASSWORD_HASH", ""),
            ("LABLINK__SERVER__BIND", ""),
        ]),
    )
    .expect("empty values are ignored");
    assert_eq!(config, Config::default());
}

#[test]
fn a_password_hash_must_be_argon2_and_excludes_a_password() {
    let hash = crate::auth::passwords::hash_password("a long enough password").expect("hash");
    let config = Config::load_from(
        None,
        None,
        &env(&[("LABLINK__ADMIN__PASSWORD_HASH", &hash)]),
    )
    .expect("a real hash");
    assert_eq!(config.admin.password_hash.as_deref(), Some(hash.as_str()));

    let message = Config::load_from(
        None,
        None,
        &env(&[("LABLINK__ADMIN__PASSWORD_HASH", "plaintext-password")]),
    )
    .expect_err("not a hash")
    .to_string();
    assert!(message.contains("hash-password"), "{message}");
    assert!(!message.contains("plaintext-password"), "{message}");

    let message = Config::load_from(
        None,
        None,
        &env(&[
            ("LABLINK__ADMIN__PASSWORD_HASH", &hash),
            ("LABLINK__ADMIN__PASSWORD", "another long password"),
        ]),
    )
    .expect_err("both")
    .to_string();
    assert!(message.contains("not both"), "{message}");
}

#[test]
fn numbers_and_flags_from_the_environment_are_converted() {
    let config = Config::load_from(
        None,
        None,
        &env(&[
            ("LABLINK__DATABASE__STARTUP_TIMEOUT_SECS", "7"),
            ("LABLINK__SERVER__WORKERS", "3"),
        ]),
    )
    .expect("typed values");
    assert_eq!(config.database.startup_timeout_secs, 7);
    assert_eq!(config.server.workers, 3);
    let err = Config::load_from(None, None, &env(&[("LABLINK__SERVER__WORKERS", "many")]))
        .expect_err("not a number");
    assert!(err.to_string().contains("\"many\""), "{err}");
}

#[test]
fn a_bad_environment_value_names_the_variable_and_the_value() {
    let err = Config::load_from(
        None,
        None,
        &env(&[("LABLINK__SERVER__BIND", "not-an-address")]),
    )
    .expect_err("bad bind");
    let message = err.to_string();
    assert!(message.contains("LABLINK__SERVER__BIND"), "{message}");
    assert!(message.contains("\"not-an-address\""), "{message}");
}

#[test]
fn a_bad_file_value_names_the_key_the_value_and_the_file() {
    let file = yaml("database:\n  pool_size: -3\n");
    let message = Config::load_from(Some(file.path()), None, &[])
        .expect_err("negative pool")
        .to_string();
    assert!(message.contains("database.pool_size"), "{message}");
    assert!(message.contains("-3"), "{message}");
    assert!(
        message.contains(&file.path().display().to_string()),
        "{message}"
    );
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let message = Config::load_from(None, None, &env(&[("LABLINK__SERVER__BINDD", "x")]))
        .expect_err("typo")
        .to_string();
    assert!(message.contains("LABLINK__SERVER__BINDD"), "{message}");
    let file = yaml("sever:\n  bind: 0.0.0.0:1\n");
    let message = Config::load_from(Some(file.path()), None, &[])
        .expect_err("typo")
        .to_string();
    assert!(message.contains("sever"), "{message}");
}

#[test]
fn values_that_parse_but_cannot_work_are_refused() {
    for (name, value, key) in [
        (
            "LABLINK__DATABASE__POOL_SIZE",
            "0",
            "LABLINK__DATABASE__POOL_SIZE",
        ),
        (
            "LABLINK__DATABASE__WRITER_THREADS",
            "0",
            "LABLINK__DATABASE__WRITER_THREADS",
        ),
        ("DATABASE_URL", "mysql://u:pw@h/db", "DATABASE_URL"),
        ("LABLINK__LOG__LEVEL", "info,=[", "LABLINK__LOG__LEVEL"),
    ] {
        let message = Config::load_from(None, None, &env(&[(name, value)]))
            .expect_err(name)
            .to_string();
        assert!(message.contains(key), "{message}");
    }
}

#[test]
fn database_passwords_never_appear_in_errors_or_debug_output() {
    let message = Config::load_from(
        None,
        None,
        &env(&[("DATABASE_URL", "mysql://u:hunter2@h/db")]),
    )
    .expect_err("unsupported")
    .to_string();
    assert!(!message.contains("hunter2"), "{message}");
    let config = Config::load_from(
        None,
        None,
        &env(&[("DATABASE_URL", "postgres://u:hunter2@h/db")]),
    )
    .expect("valid");
    assert!(!format!("{config:?}").contains("hunter2"));
}

#[test]
fn admin_and_client_settings_come_from_the_environment() {
    let config = Config::load_from(
        None,
        None,
        &env(&[
            ("LABLINK__ADMIN__PASSWORD", "000123456789"),
            ("LABLINK__CLIENTS__LEGACY_UNAUTHENTICATED", "true"),
        ]),
    )
    .expect("valid");
    assert_eq!(config.admin.password.as_deref(), Some("000123456789"));
    assert!(config.clients.legacy_unauthenticated);
    assert!(!format!("{config:?}").contains("000123456789"));
    assert!(
        !Config::default().clients.legacy_unauthenticated,
        "off by default"
    );
    assert_eq!(
        Config::default().admin.password,
        None,
        "no default password"
    );

    let message = Config::load_from(None, None, &env(&[("LABLINK__ADMIN__PASSWORD", "short")]))
        .expect_err("too short")
        .to_string();
    assert!(message.contains("LABLINK__ADMIN__PASSWORD"), "{message}");
    assert!(
        !message.contains("short\""),
        "the password must not be shown: {message}"
    );
}

#[test]
fn a_missing_or_broken_file_is_reported() {
    let missing = Config::load_from(Some(Path::new("/nonexistent/lablink.yaml")), None, &[])
        .expect_err("missing");
    assert!(missing.to_string().contains("/nonexistent/lablink.yaml"));
    let broken = yaml("server: [unclosed\n");
    let err = Config::load_from(Some(broken.path()), None, &[]).expect_err("broken");
    assert!(matches!(err, ConfigError::File { .. }), "{err:?}");
}

#[test]
fn the_pool_must_outnumber_what_the_three_writers_can_hold() {
    let postgres = ("DATABASE_URL", "postgres://lab@db/lablink");
    // 3 writers × 4 threads hold 12 connections at once: 12 leaves reads none.
    let message = Config::load_from(
        None,
        None,
        &env(&[postgres, ("LABLINK__DATABASE__POOL_SIZE", "12")]),
    )
    .expect_err("no connection left for reads")
    .to_string();
    assert!(
        message.contains("LABLINK__DATABASE__POOL_SIZE"),
        "{message}"
    );
    assert!(message.contains("3 × 4 writer threads"), "{message}");
    let config = Config::load_from(
        None,
        None,
        &env(&[postgres, ("LABLINK__DATABASE__POOL_SIZE", "13")]),
    )
    .expect("one connection left for reads");
    assert_eq!(config.database.pool_size, 13);
    // SQLite runs one thread per writer whatever writer_threads says.
    let sqlite = Config::load_from(None, None, &env(&[("LABLINK__DATABASE__POOL_SIZE", "4")]))
        .expect("SQLite: 3 writers hold 3");
    assert_eq!(sqlite.database.pool_size, 4);
}

#[test]
fn secrets_never_show_in_debug_output_or_refusals() {
    let config = Config::load_from(
        None,
        None,
        &env(&[
            ("LABLINK__ADMIN__PASSWORD", "short-pw"),
            ("LABLINK__METRICS__TOKEN", "x"),
        ]),
    );
    let message = config.expect_err("too short").to_string();
    assert!(message.contains("LABLINK__ADMIN__PASSWORD"), "{message}");
    assert!(!message.contains("short-pw"), "{message}");
    let mut config = Config::default();
    config.admin.password = Some("a-long-admin-password".into());
    config.metrics.token = Some("a-long-scraper-token".into());
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("a-long-admin-password") && !shown.contains("a-long-scraper-token"),
        "{shown}"
    );
}

#[test]
fn a_password_written_as_a_number_in_the_file_is_read_as_its_text() {
    let file = yaml("admin:\n  password: 123456789012\n");
    let config = Config::load_from(Some(file.path()), None, &[]).expect("numeric password");
    assert_eq!(config.admin.password.as_deref(), Some("123456789012"));
}

#[test]
fn other_allocators_reach_this_one_at_its_advertised_url_or_its_own_address() {
    let bound: SocketAddr = "10.0.0.5:5000".parse().expect("address");
    let wildcard: SocketAddr = "0.0.0.0:5000".parse().expect("address");
    let config = Config::load_from(None, None, &[]).expect("defaults");
    assert_eq!(
        config.server.advertised_url(bound).as_deref(),
        Some("http://10.0.0.5:5000")
    );
    assert_eq!(config.server.advertised_url(wildcard), None, "not guessed");

    let set = Config::load_from(
        None,
        None,
        &env(&[(
            "LABLINK__SERVER__ADVERTISE_URL",
            "https://alloc-2.lab:8443/",
        )]),
    )
    .expect("config");
    assert_eq!(
        set.server.advertised_url(wildcard).as_deref(),
        Some("https://alloc-2.lab:8443")
    );
    for bad in [
        "alloc-2:5000",
        "ftp://alloc-2",
        "http://alloc-2:5000/lablink",
        "http://user:pw@alloc-2",
        "http://alloc-2/?x=1",
    ] {
        let message =
            Config::load_from(None, None, &env(&[("LABLINK__SERVER__ADVERTISE_URL", bad)]))
                .expect_err(bad)
                .to_string();
        assert!(
            message.contains("LABLINK__SERVER__ADVERTISE_URL"),
            "{bad}: {message}"
        );
    }
}
