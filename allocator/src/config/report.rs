//! The configuration as an operator reads it: every key with its dotted name, environment
//! variable and value, secrets masked (a [`super::Secret`] serialises as its mask). `lablink-allocator check-config` prints it, and the
//! tests hold docs/configuration.md to the same list.

use serde_json::Value;

use super::{Config, ENV_PREFIX, ENV_SEPARATOR};
use lablink_schema::connection::redact_url;

/// Keys whose value is a map of free-form names (each entry is its own variable), not a
/// section of fixed keys.
pub const MAP_KEYS: [&str; 2] = ["provider.terraform.variables", "workshops.prices"];

pub use super::secret::MASK;

/// One configuration key.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigKey {
    /// Dotted name, as in the YAML file: `server.bind`.
    pub key: String,
    /// The environment variable that sets it: `LABLINK__SERVER__BIND`.
    pub env: String,
    /// The value, as JSON, with secrets masked.
    pub value: Value,
}

/// Every key of `config`, in the order of the configuration's sections.
pub fn keys(config: &Config) -> Vec<ConfigKey> {
    let mut keys = Vec::new();
    // Serialising plain data to a JSON value cannot fail.
    let value = serde_json::to_value(config).unwrap_or(Value::Null);
    collect(&mut keys, "", &value);
    keys
}

fn collect(keys: &mut Vec<ConfigKey>, prefix: &str, value: &Value) {
    match value {
        Value::Object(entries) if !MAP_KEYS.contains(&prefix) => {
            for (name, inner) in entries {
                let key = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                collect(keys, &key, inner);
            }
        }
        _ => keys.push(ConfigKey {
            key: prefix.to_owned(),
            env: env_name(prefix),
            value: masked(prefix, value),
        }),
    }
}

/// The environment variable of a dotted key.
pub fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.split('.')
            .map(str::to_ascii_uppercase)
            .collect::<Vec<_>>()
            .join(ENV_SEPARATOR)
    )
}

/// A URL's password removed; secrets arrive masked already.
fn masked(key: &str, value: &Value) -> Value {
    match value {
        Value::String(url) if key.ends_with(".url") => Value::String(redact_url(url)),
        other => other.clone(),
    }
}

/// The configuration as YAML, secrets masked: what `check-config` prints.
pub fn to_yaml(config: &Config) -> String {
    let mut masked_tree = serde_json::Map::new();
    for key in keys(config) {
        let mut node = &mut masked_tree;
        let parts: Vec<&str> = key.key.split('.').collect();
        let (last, sections) = parts.split_last().unwrap_or((&"", &[]));
        for section in sections {
            let entry = node
                .entry((*section).to_owned())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            node = match entry {
                Value::Object(inner) => inner,
                _ => unreachable!("sections are objects"),
            };
        }
        node.insert((*last).to_owned(), key.value);
    }
    let mut out = String::new();
    write_yaml(&mut out, &masked_tree, 0);
    out
}

fn write_yaml(out: &mut String, map: &serde_json::Map<String, Value>, depth: usize) {
    let indent = "  ".repeat(depth);
    for (name, value) in map {
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push_str(&format!("{indent}{name}:\n"));
                write_yaml(out, inner, depth + 1);
            }
            Value::Object(_) => out.push_str(&format!("{indent}{name}: {{}}\n")),
            // A JSON scalar is also a valid YAML scalar (strings double-quoted).
            scalar => out.push_str(&format!("{indent}{name}: {scalar}\n")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_its_environment_name_and_default() {
        let keys = keys(&Config::default());
        let bind = keys
            .iter()
            .find(|k| k.key == "server.bind")
            .expect("server.bind");
        assert_eq!(bind.env, "LABLINK__SERVER__BIND");
        assert_eq!(bind.value, Value::String("127.0.0.1:5000".to_owned()));
        let variables = keys
            .iter()
            .find(|k| k.key == "provider.terraform.variables")
            .expect("a map is one key");
        assert_eq!(variables.value, serde_json::json!({}));
        assert!(keys.iter().any(|k| k.key == "admin.password"));
    }

    #[test]
    fn secrets_are_masked_and_urls_lose_their_password() {
        let mut config = Config::default();
        config.admin.password = Some("correct horse battery".into());
        config.metrics.token = Some("a-scraper-token-of-length".into());
        config.database.url = Some("postgres://lab:hunter2@db/lablink".to_owned());
        let yaml = to_yaml(&config);
        for secret in ["correct horse", "a-scraper-token", "hunter2"] {
            assert!(!yaml.contains(secret), "{secret} shown in\n{yaml}");
        }
        assert!(yaml.contains("password: \"********\""), "{yaml}");
        assert!(yaml.contains("postgres://lab:***@db/lablink"), "{yaml}");
        assert!(
            yaml.contains("server:\n  advertise_url: null\n  bind: \"127.0.0.1:5000\""),
            "{yaml}"
        );
        assert!(yaml.contains("    variables: {}"), "{yaml}");
    }
}
