//! `lablink login URL`, `logout` and `whoami`.

use lablink_schema::wire::WhoAmI;

use super::Style;
use crate::api::{self, Api};
use crate::credentials::{self, Login};
use crate::error::CliError;
use crate::output;

/// Checks the token against the allocator, then saves both.
pub async fn login(url: &str, token: Option<String>) -> Result<(), CliError> {
    let url = api::normalised_url(url)?;
    let token = match token {
        Some(token) => token,
        None => read_token()?,
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(CliError::Usage(
            "no token given: make one on the dashboard (API tokens) and paste it".to_owned(),
        ));
    }
    let api = Api::new(&url, &token)?;
    let version = api.check_version().await?;
    let me: WhoAmI = api.get_as("/api/admin/whoami").await?;
    let path = credentials::save(&Login {
        url: url.clone(),
        token,
    })?;
    output::line(&format!(
        "logged in to {url} (release {}) as {} ({}); saved in {}",
        version.version,
        me.actor,
        me.scope,
        path.display()
    ))
}

/// The token from the terminal (not echoed) or from a pipe.
fn read_token() -> Result<String, CliError> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        rpassword::prompt_password("API token: ").map_err(CliError::from)
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line)
    }
}

pub fn logout() -> Result<(), CliError> {
    if credentials::remove()? {
        output::line("logged out")
    } else {
        output::line("not logged in")
    }
}

pub async fn whoami(api: &Api, style: Style) -> Result<(), CliError> {
    let answer = api.get("/api/admin/whoami").await?;
    if style.json {
        return output::json(&answer.body);
    }
    let me: WhoAmI = api::parse(answer.body)?;
    output::line(&format!("{} ({}) at {}", me.actor, me.scope, api.base()))
}
