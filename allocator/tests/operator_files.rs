//! What operators are handed must agree with the code: the configuration reference, the
//! container images and the compose deployment. No image can be built here (no Docker
//! engine), so these tests check everything that can be checked without one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use figment::providers::{Format, Yaml};
use figment::Figment;
use lablink_allocator::config::report::{self as config_report, MAP_KEYS};
use lablink_allocator::config::Config;
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the allocator crate sits in the workspace")
        .to_owned()
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_root().join(relative))
        .unwrap_or_else(|err| panic!("cannot read {relative}: {err}"))
}

/// The cells of each table row whose first cell is a backticked dotted key.
fn reference_rows(markdown: &str) -> BTreeMap<String, Vec<String>> {
    let mut rows = BTreeMap::new();
    for line in markdown.lines() {
        let Some(inner) = line
            .trim()
            .strip_prefix('|')
            .and_then(|l| l.strip_suffix('|'))
        else {
            continue;
        };
        let cells: Vec<String> = inner.split('|').map(|c| c.trim().to_owned()).collect();
        let Some(key) = cells[0]
            .strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .map(str::to_owned)
        else {
            continue;
        };
        if !key.contains('.') || key.contains(' ') {
            continue;
        }
        assert_eq!(cells.len(), 4, "row of {key} needs 4 cells: {line}");
        let previous = rows.insert(key.clone(), cells);
        assert!(previous.is_none(), "{key} is listed twice");
    }
    rows
}

/// How the reference writes a default.
fn shown_default(value: &Value) -> String {
    match value {
        Value::Null => "(unset)".to_owned(),
        Value::String(text) => format!("`{text}`"),
        other => format!("`{other}`"),
    }
}

#[test]
fn the_configuration_reference_lists_every_key_with_its_variable_and_default() {
    let rows = reference_rows(&read("docs/configuration.md"));
    let keys = config_report::keys(&Config::default());
    let in_code: BTreeSet<&str> = keys.iter().map(|k| k.key.as_str()).collect();
    let in_docs: BTreeSet<&str> = rows.keys().map(String::as_str).collect();
    assert_eq!(
        in_docs.difference(&in_code).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "docs/configuration.md lists keys the code does not have"
    );
    assert_eq!(
        in_code.difference(&in_docs).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "docs/configuration.md misses keys"
    );
    for key in &keys {
        let cells = &rows[&key.key];
        let env = if MAP_KEYS.contains(&key.key.as_str()) {
            format!("`{}__<NAME>`", key.env)
        } else {
            format!("`{}`", key.env)
        };
        assert_eq!(cells[1], env, "environment variable of {}", key.key);
        assert_eq!(
            cells[2],
            shown_default(&key.value),
            "default of {}",
            key.key
        );
        assert!(cells[3].len() > 10, "{} needs a meaning", key.key);
    }
}

/// Each `KEY=value` of an `ENV` instruction, continuation lines included.
fn dockerfile_env(dockerfile: &str) -> Vec<(String, String)> {
    let joined = dockerfile.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|line| line.trim().strip_prefix("ENV "))
        .flat_map(|rest| {
            rest.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter_map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// `ARG NAME=default` values.
fn dockerfile_args(dockerfile: &str) -> BTreeMap<String, String> {
    dockerfile
        .lines()
        .filter_map(|line| line.trim().strip_prefix("ARG "))
        .filter_map(|rest| rest.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The sources of every `COPY` from the build context (not `--from` another stage).
fn copied_from_context(dockerfile: &str) -> Vec<String> {
    let args = dockerfile_args(dockerfile);
    let mut sources = Vec::new();
    for line in dockerfile.lines() {
        let Some(rest) = line.trim().strip_prefix("COPY ") else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        if words.iter().any(|w| w.starts_with("--from=")) {
            continue;
        }
        let operands: Vec<&str> = words.into_iter().filter(|w| !w.starts_with("--")).collect();
        let (_destination, copied) = operands.split_last().expect("COPY has operands");
        for source in copied {
            let resolved = match source.strip_prefix("${").and_then(|s| s.strip_suffix('}')) {
                Some(arg) => args
                    .get(arg)
                    .unwrap_or_else(|| panic!("COPY uses ${{{arg}}} without a default"))
                    .clone(),
                None => (*source).to_owned(),
            };
            sources.push(resolved);
        }
    }
    sources
}

/// The binary names each workspace crate declares in `[[bin]]`.
fn workspace_binaries() -> BTreeMap<String, Vec<String>> {
    let mut binaries = BTreeMap::new();
    for crate_dir in ["schema", "actors", "allocator", "allocator/cli", "client"] {
        let manifest = read(&format!("{crate_dir}/Cargo.toml"));
        let package = manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .and_then(|l| l.strip_suffix('"'))
            .expect("package name")
            .to_owned();
        let bins: Vec<String> = manifest
            .split("[[bin]]")
            .skip(1)
            .filter_map(|section| {
                section
                    .lines()
                    .find_map(|l| l.strip_prefix("name = \""))
                    .and_then(|l| l.strip_suffix('"'))
                    .map(str::to_owned)
            })
            .collect();
        binaries.insert(package, bins);
    }
    binaries
}

/// What `dockerfile` builds with `cargo build -p …` and takes from `target/release/…`.
fn built_packages_and_binaries(dockerfile: &str) -> (Vec<String>, Vec<String>) {
    let joined = dockerfile.replace("\\\n", " ");
    let words: Vec<&str> = joined.split_whitespace().collect();
    let packages = words
        .windows(2)
        .filter(|pair| pair[0] == "-p")
        .map(|pair| pair[1].to_owned())
        .collect();
    let binaries = words
        .iter()
        .filter_map(|w| w.strip_prefix("target/release/"))
        .map(str::to_owned)
        .collect();
    (packages, binaries)
}

#[test]
fn the_dockerfiles_copy_files_that_exist_and_build_binaries_the_workspace_has() {
    let binaries = workspace_binaries();
    for path in ["allocator/Dockerfile", "client/Dockerfile"] {
        let dockerfile = read(path);
        for source in copied_from_context(&dockerfile) {
            assert!(
                repo_root().join(&source).exists(),
                "{path} copies {source}, which does not exist"
            );
        }
        let (packages, built) = built_packages_and_binaries(&dockerfile);
        assert!(!packages.is_empty(), "{path} builds nothing");
        for package in &packages {
            assert!(
                binaries.contains_key(package),
                "{path} builds {package}, not a workspace crate"
            );
        }
        for binary in &built {
            assert!(
                packages
                    .iter()
                    .any(|p| binaries[p].iter().any(|b| b == binary)),
                "{path} takes target/release/{binary}, which none of {packages:?} builds"
            );
        }
    }
    let (_, client_binaries) = built_packages_and_binaries(&read("client/Dockerfile"));
    assert_eq!(client_binaries, vec!["lablink-client".to_owned()]);
    let (_, allocator_binaries) = built_packages_and_binaries(&read("allocator/Dockerfile"));
    assert_eq!(
        allocator_binaries,
        vec![
            "lablink-allocator".to_owned(),
            "lablink-client".to_owned(),
            "lablink".to_owned()
        ]
    );
}

#[test]
fn the_client_image_holds_what_its_browser_desktop_runs() {
    let dockerfile = read("client/Dockerfile");
    // The script's programs, by the Debian package that has them.
    for (program, package) in [
        ("Xvnc", "tigervnc-standalone-server"),
        ("dbus-launch", "dbus-x11"),
        ("startxfce4", "xfce4"),
        ("xprintidle", "xprintidle"),
    ] {
        assert!(
            dockerfile.split_whitespace().any(|word| word == package),
            "client/Dockerfile does not install {package}, which has {program}"
        );
    }
    assert!(
        dockerfile.contains(
            "COPY --chmod=0755 client/image/vnc-desktop.sh /usr/local/lib/lablink/vnc-desktop.sh"
        ),
        "the desktop script is where start.sh runs it"
    );
    let start = read("client/image/start.sh");
    assert!(
        start.contains("if [ \"${LABLINK_BROWSER_DESKTOP:-off}\" = on ]; then\n  /usr/local/lib/lablink/vnc-desktop.sh"),
        "start.sh runs the desktop script only when asked"
    );
    // Off by default (Chrome Remote Desktop keeps its display), on the loopback.
    for setting in [
        "LABLINK_BROWSER_DESKTOP=off",
        "LABLINK_VNC_ADDR=127.0.0.1:5901",
        "LABLINK_X_DISPLAY=:20",
    ] {
        assert!(
            dockerfile.contains(setting),
            "client/Dockerfile lacks {setting}"
        );
    }
}

#[test]
fn the_allocator_image_settings_are_valid_configuration_and_agree_on_the_port() {
    let dockerfile = read("allocator/Dockerfile");
    let env = dockerfile_env(&dockerfile);
    assert!(!env.is_empty());
    for (name, _) in &env {
        assert!(name.starts_with("LABLINK__"), "{name} is not a setting");
    }
    let config = Config::load_from(None, None, &env).expect("the image's settings are valid");
    let port = config.server.bind.port();
    assert_eq!(
        port,
        Config::default().server.bind.port(),
        "the image serves on the default port"
    );
    assert!(
        dockerfile.contains(&format!("EXPOSE {port}\n")),
        "EXPOSE {port}"
    );
    let healthcheck = dockerfile
        .lines()
        .find(|l| l.contains("/readyz"))
        .expect("a healthcheck");
    assert!(
        healthcheck.contains(&format!("http://127.0.0.1:{port}/readyz")),
        "{healthcheck}"
    );
    assert!(dockerfile.contains("\nUSER lablink\n"), "runs unprivileged");
    assert!(
        dockerfile.contains("ARG TERRAFORM_VERSION="),
        "includes terraform"
    );
    let module_dir = config.provider.terraform.module_dir.clone();
    assert_eq!(
        module_dir,
        PathBuf::from("/usr/share/lablink/terraform/aws"),
        "the module dir is where the image copies terraform/"
    );
    assert!(dockerfile.contains("COPY terraform /usr/share/lablink/terraform\n"));
}

fn compose() -> Value {
    Figment::from(Yaml::file_exact(repo_root().join("docker-compose.yml")))
        .extract()
        .expect("docker-compose.yml is YAML")
}

#[test]
fn the_compose_deployment_uses_real_settings_and_healthy_dependencies() {
    let compose = compose();
    let services = &compose["services"];
    let allocator = &services["allocator"];
    let postgres = &services["postgres"];
    assert_eq!(allocator["build"]["dockerfile"], "allocator/Dockerfile");

    let keys = config_report::keys(&Config::default());
    let environment = allocator["environment"]
        .as_object()
        .expect("the allocator's environment is a map");
    for name in environment.keys() {
        let known = name == "DATABASE_URL"
            || keys.iter().any(|k| {
                &k.env == name
                    || (MAP_KEYS.contains(&k.key.as_str())
                        && name.starts_with(&format!("{}__", k.env)))
            });
        assert!(
            known,
            "docker-compose.yml sets {name}, which is no configuration key"
        );
    }
    // With sample values in place of the `${…}` substitutions, the settings load.
    let sample: Vec<(String, String)> = environment
        .iter()
        .map(|(name, value)| {
            let value = value.as_str().expect("string values");
            let sample = match name.as_str() {
                "DATABASE_URL" => "postgres://lablink:pw@postgres:5432/lablink".to_owned(),
                _ => value
                    .split_once(":-")
                    .map(|(_, default)| default.trim_end_matches('}').to_owned())
                    .unwrap_or_else(|| value.to_owned()),
            };
            (name.clone(), sample)
        })
        .collect();
    let config = Config::load_from(None, None, &sample).expect("compose's settings load");
    assert!(config
        .database
        .url
        .as_deref()
        .is_some_and(|u| u.contains("@postgres:5432/")));
    assert!(environment["DATABASE_URL"]
        .as_str()
        .is_some_and(|u| u.contains("@postgres:5432/")));

    let port = Config::default().server.bind.port();
    let published = allocator["ports"][0].as_str().expect("a published port");
    assert!(published.ends_with(&format!(":{port}")), "{published}");
    let healthcheck = allocator["healthcheck"]["test"].to_string();
    assert!(
        healthcheck.contains(&format!("http://127.0.0.1:{port}/readyz")),
        "{healthcheck}"
    );
    assert_eq!(
        allocator["depends_on"]["postgres"]["condition"],
        "service_healthy"
    );
    assert!(postgres["healthcheck"]["test"]
        .to_string()
        .contains("pg_isready"));
    let data_volume = postgres["volumes"][0].as_str().expect("a volume");
    let volume_name = data_volume.split(':').next().expect("name");
    assert!(
        compose["volumes"]
            .as_object()
            .is_some_and(|v| v.contains_key(volume_name)),
        "PostgreSQL keeps its data in the named volume {volume_name}"
    );

    let caddy = &services["caddy"];
    assert_eq!(caddy["profiles"][0], "tls", "TLS is optional");
    // Only Caddy's own address is a trusted proxy, never a range a lab VM may share.
    let caddy_address = caddy["networks"]["default"]["ipv4_address"]
        .as_str()
        .expect("Caddy has a fixed address");
    assert_eq!(
        config.server.trusted_proxies, caddy_address,
        "the allocator trusts exactly Caddy"
    );
    let caddyfile = read("deploy/Caddyfile");
    assert!(
        caddyfile.contains(&format!("reverse_proxy allocator:{port}")),
        "Caddy proxies to the allocator service"
    );
    for mount in caddy["volumes"].as_array().expect("mounts") {
        let source = mount
            .as_str()
            .expect("mount")
            .split(':')
            .next()
            .expect("source");
        if let Some(relative) = source.strip_prefix("./") {
            assert!(repo_root().join(relative).exists(), "{source} exists");
        }
    }
}
