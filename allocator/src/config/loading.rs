//! Loading the layered configuration: compiled-in defaults, then the YAML file, then the
//! environment (strings kept exactly as written), then `--bind`; and turning figment's
//! errors into ones that name the key as the operator wrote it, its value and its source.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Yaml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use lablink_schema::connection::redact_url;

use super::{Config, ConfigError, CONFIG_FILE_ENV, DATABASE_URL_ENV, ENV_PREFIX, ENV_SEPARATOR};

impl Config {
    /// Loads the layered configuration: defaults, then the YAML file (`file`, else
    /// `LABLINK_CONFIG`), then the environment, then `bind` (from `--bind`); its paths are
    /// then made absolute and checked ([`Config::settle_paths`]).
    pub fn load(file: Option<&Path>, bind: Option<SocketAddr>) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let mut config = Self::load_from(file, bind, &env)?;
        let cwd = std::env::current_dir().map_err(|err| ConfigError::Path {
            key: "(working directory)".to_owned(),
            path: ".".to_owned(),
            reason: err.to_string(),
        })?;
        config.settle_paths(&cwd)?;
        Ok(config)
    }

    /// [`Config::load`] with the environment given explicitly (for tests).
    pub fn load_from(
        file: Option<&Path>,
        bind: Option<SocketAddr>,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let file = file.map(Path::to_path_buf).or_else(|| {
            env.iter()
                .find(|(name, value)| name == CONFIG_FILE_ENV && !value.is_empty())
                .map(|(_, value)| PathBuf::from(value))
        });
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &file {
            if !path.is_file() {
                return Err(ConfigError::File {
                    path: path.display().to_string(),
                    reason: "no such file".to_owned(),
                });
            }
            figment = figment.merge(Yaml::file_exact(path));
        }
        figment = figment
            .merge(EnvLayer::database_url(env))
            .merge(EnvLayer::prefixed(env));
        if let Some(bind) = bind {
            figment = figment.merge(Serialized::global("server.bind", bind.to_string()));
        }
        // Lossy: environment values are strings, converted only where the key is a number or
        // a flag (`true`, `yes`, `1`, …); string keys keep exactly what was written.
        let config: Config = figment
            .extract_lossy()
            .map_err(|err| explain(&figment, file.as_deref(), err))?;
        config.validate(&figment)?;
        Ok(config)
    }
}

/// Turns figment's error into one that names the key as the user wrote it, its value, and
/// where it came from.
fn explain(figment: &Figment, file: Option<&Path>, err: figment::Error) -> ConfigError {
    let path: Vec<&str> = err.path.iter().map(String::as_str).collect();
    if path.is_empty() {
        return ConfigError::File {
            path: file.map_or_else(|| "(none)".to_owned(), |p| p.display().to_string()),
            reason: err.kind.to_string(),
        };
    }
    match &err.kind {
        figment::error::Kind::UnknownField(_, _) => ConfigError::UnknownKey {
            key: origin_key(figment, &path),
            origin: origin_name(figment, &path),
            reason: err.kind.to_string(),
        },
        kind => ConfigError::InvalidValue {
            key: origin_key(figment, &path),
            value: shown_value(figment, &path),
            origin: origin_name(figment, &path),
            reason: kind.to_string(),
        },
    }
}

/// The key as its source spells it: the variable name for the environment, the dotted path
/// otherwise.
pub(super) fn origin_key(figment: &Figment, path: &[&str]) -> String {
    let dotted = path.join(".");
    match figment.find_metadata(&dotted) {
        Some(metadata) if metadata.name.contains("environment") => {
            metadata.interpolate(&Profile::Global, path)
        }
        _ => dotted,
    }
}

pub(super) fn origin_name(figment: &Figment, path: &[&str]) -> String {
    match figment.find_metadata(&path.join(".")) {
        Some(metadata) => match &metadata.source {
            Some(figment::Source::File(file)) => format!("file {}", file.display()),
            _ => metadata.name.to_string(),
        },
        None => "defaults".to_owned(),
    }
}

/// The value at `path` as its source gave it, quoted, with a URL's password removed. (A
/// secret's value is never asked for: [`super::secret::Secret`] reads any scalar, and
/// validation hides the values of the keys that hold one.)
pub(super) fn shown_value(figment: &Figment, path: &[&str]) -> String {
    let last = path.last().copied().unwrap_or_default();
    let value = match figment.find_value(&path.join(".")) {
        Ok(Value::String(_, text)) => format!("{text:?}"),
        Ok(Value::Num(_, num)) => num
            .to_i128()
            .map(|n| n.to_string())
            .or_else(|| num.to_u128().map(|n| n.to_string()))
            .unwrap_or_else(|| format!("{num:?}")),
        Ok(Value::Bool(_, flag)) => flag.to_string(),
        Ok(Value::Char(_, c)) => format!("{c:?}"),
        Ok(_) => "(a list or section)".to_owned(),
        Err(_) => "(not set)".to_owned(),
    };
    if last == "url" {
        redact_url(&value)
    } else {
        value
    }
}

/// Environment variables as a configuration layer. Values stay strings, exactly as given
/// (figment's own provider would turn a password `007` into the number 7); typed keys parse
/// them when extracted.
#[derive(Debug)]
struct EnvLayer {
    name: &'static str,
    values: Dict,
    interpolate: fn(&[String]) -> String,
}

impl EnvLayer {
    /// `LABLINK__SECTION__KEY=value` → `section.key = "value"`. An empty variable counts as
    /// unset, as compose files and `.env` files leave optional ones.
    fn prefixed(env: &[(String, String)]) -> Self {
        let mut values = Dict::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if value.is_empty() {
                continue;
            }
            let keys: Vec<String> = rest
                .split(ENV_SEPARATOR)
                .map(str::to_ascii_lowercase)
                .collect();
            if keys.iter().any(String::is_empty) {
                continue;
            }
            insert_nested(&mut values, &keys, value.clone());
        }
        EnvLayer {
            name: "environment variable",
            values,
            interpolate: |keys| {
                format!(
                    "{ENV_PREFIX}{}",
                    keys.iter()
                        .map(|k| k.to_ascii_uppercase())
                        .collect::<Vec<_>>()
                        .join(ENV_SEPARATOR)
                )
            },
        }
    }

    /// `DATABASE_URL=…` → `database.url`.
    fn database_url(env: &[(String, String)]) -> Self {
        let mut values = Dict::new();
        if let Some((_, url)) = env
            .iter()
            .find(|(name, value)| name == DATABASE_URL_ENV && !value.is_empty())
        {
            insert_nested(&mut values, &["database".into(), "url".into()], url.clone());
        }
        EnvLayer {
            name: "environment variable",
            values,
            interpolate: |_| DATABASE_URL_ENV.to_owned(),
        }
    }
}

fn insert_nested(dict: &mut Dict, keys: &[String], value: String) {
    match keys {
        [] => {}
        [last] => {
            dict.insert(last.clone(), Value::from(value));
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_nested(inner, rest, value);
            }
        }
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        let interpolate = self.interpolate;
        Metadata::named(self.name).interpolater(move |_profile, keys| {
            let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
            interpolate(&keys)
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Global.collect(self.values.clone()))
    }
}
