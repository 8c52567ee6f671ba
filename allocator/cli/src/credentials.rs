//! Where `lablink login` keeps the allocator's address and the token: a file readable by its
//! owner only (0600) in the user's config directory. `LABLINK_URL` and `LABLINK_TOKEN` in
//! the environment take its place, for scripts.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// What a login keeps.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub url: String,
    pub token: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// `$XDG_CONFIG_HOME/lablink/credentials.json`, else `~/.config/lablink/credentials.json`.
pub fn path() -> Result<PathBuf, CliError> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|home| PathBuf::from(home).join(".config"))
            .ok_or_else(|| {
                CliError::Usage(
                    "neither XDG_CONFIG_HOME nor HOME is set: set LABLINK_URL and \
                     LABLINK_TOKEN instead"
                        .to_owned(),
                )
            })?,
    };
    Ok(base.join("lablink").join("credentials.json"))
}

/// Keeps `login`, readable by the user only.
pub fn save(login: &Login) -> Result<PathBuf, CliError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let path = path()?;
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    // Written beside and renamed, so a failed write never leaves half a file.
    let partial = path.with_extension("json.partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)?;
    // An existing file keeps its mode on open: make sure.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    let text = serde_json::to_string_pretty(login).map_err(|e| CliError::Failed(e.to_string()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

/// Forgets the login; whether there was one.
pub fn remove() -> Result<bool, CliError> {
    match std::fs::remove_file(path()?) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// The allocator and token to use: `url` (from `--url` or `LABLINK_URL`) and `LABLINK_TOKEN`
/// first, then the saved login.
pub fn resolve(url: Option<String>, token: Option<String>) -> Result<Login, CliError> {
    let saved = load()?;
    let url = url
        .or_else(|| saved.as_ref().map(|l| l.url.clone()))
        .ok_or_else(|| {
            CliError::Usage(
                "no allocator: run `lablink login URL`, or set LABLINK_URL and LABLINK_TOKEN"
                    .to_owned(),
            )
        })?;
    let token = token.or_else(|| saved.map(|l| l.token)).ok_or_else(|| {
        CliError::Usage("no API token: run `lablink login URL`, or set LABLINK_TOKEN".to_owned())
    })?;
    Ok(Login { url, token })
}

fn load() -> Result<Option<Login>, CliError> {
    let Ok(path) = path() else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|err| {
            CliError::Usage(format!(
                "{} is not a lablink login ({err}): run `lablink login URL` again",
                path.display()
            ))
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err.into()),
    }
}
