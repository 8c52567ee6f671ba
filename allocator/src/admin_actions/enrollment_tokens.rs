//! Enrollment tokens as admin actions: create (the token shown once), list, revoke. The JSON
//! API and the dashboard both call these, so input is checked once and each action leaves the
//! same audit record whichever surface asked.

use chrono::Utc;
use lablink_actors::enrollment_writes::{CreateEnrollmentToken, RevokeEnrollmentToken};
use lablink_schema::enrollment::{EnrollmentToken, NewEnrollmentToken, TokenRefusal};
use lablink_schema::wire::{
    CreatedEnrollmentToken, EnrollmentTokenRequest, EnrollmentTokenState, EnrollmentTokenView,
};

use crate::auth::{new_enrollment_token, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// Longest label, in characters.
const MAX_LABEL_CHARS: usize = 100;
/// Longest lifetime an enrollment token may be given: a year.
const MAX_TTL_SECS: u64 = 366 * 24 * 3600;

/// What an admin asks for (`POST /api/admin/enrollment-tokens`, the dashboard's form).
pub type NewTokenRequest = EnrollmentTokenRequest;
/// An enrollment token as admins see it (never the secret).
pub type TokenView = EnrollmentTokenView;

/// The token as admins see it now.
fn view(token: &EnrollmentToken) -> TokenView {
    let state = match token.usable_at(Utc::now().naive_utc()) {
        Ok(()) => EnrollmentTokenState::Active,
        Err(TokenRefusal::Expired) => EnrollmentTokenState::Expired,
        Err(TokenRefusal::UsedUp) => EnrollmentTokenState::UsedUp,
        // `Unknown` is for a token that is not stored, which this one is.
        Err(TokenRefusal::Revoked | TokenRefusal::Unknown) => EnrollmentTokenState::Revoked,
    };
    EnrollmentTokenView {
        id: token.id,
        label: token.label.clone(),
        created_by: token.created_by.clone(),
        created_at: token.created_at,
        expires_at: token.expires_at,
        max_uses: token.max_uses,
        uses: token.uses,
        revoked_at: token.revoked_at,
        state,
    }
}

fn checked(request: NewTokenRequest) -> Result<NewTokenRequest, ApiError> {
    let label = request.label.trim().to_owned();
    if label.chars().count() > MAX_LABEL_CHARS {
        return Err(ApiError::BadRequest(format!(
            "the label is longer than {MAX_LABEL_CHARS} characters"
        )));
    }
    if label.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "the label must not contain control characters".to_owned(),
        ));
    }
    match request.expires_in_secs {
        Some(0) => {
            return Err(ApiError::BadRequest(
                "expires_in_secs must be at least 1 (leave it out for a token that never expires)"
                    .to_owned(),
            ))
        }
        Some(secs) if secs > MAX_TTL_SECS => {
            return Err(ApiError::BadRequest(format!(
                "expires_in_secs may be at most {MAX_TTL_SECS} (a year)"
            )))
        }
        _ => {}
    }
    if request.max_uses == Some(0) {
        return Err(ApiError::BadRequest(
            "max_uses must be at least 1 (leave it out for any number of uses)".to_owned(),
        ));
    }
    if request
        .max_uses
        .is_some_and(|max| i32::try_from(max).is_err())
    {
        return Err(ApiError::BadRequest("max_uses is too large".to_owned()));
    }
    Ok(NewTokenRequest { label, ..request })
}

/// Makes a token; the answer carries it, the database only its hash.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: NewTokenRequest,
) -> Result<CreatedEnrollmentToken, ApiError> {
    let request = checked(request)?;
    let now = Utc::now().naive_utc();
    let expires_at = request
        .expires_in_secs
        .and_then(|secs| chrono::Duration::try_seconds(i64::try_from(secs).ok()?))
        .map(|ttl| now + ttl);
    let (token, token_hash) = new_enrollment_token();
    let stored = state
        .writer
        .send(CreateEnrollmentToken {
            token: NewEnrollmentToken {
                token_hash,
                label: request.label,
                created_by: caller.audit_name(),
                created_at: now,
                expires_at,
                max_uses: request.max_uses.and_then(|m| i32::try_from(m).ok()),
            },
        })
        .await??;
    Ok(CreatedEnrollmentToken {
        token,
        view: view(&stored),
    })
}

/// Every token, newest first.
pub async fn list(state: &AppState) -> Result<Vec<TokenView>, ApiError> {
    let tokens = state.read(EnrollmentToken::list).await?;
    Ok(tokens.iter().map(view).collect())
}

/// One token.
pub async fn show(state: &AppState, id: i64) -> Result<TokenView, ApiError> {
    state
        .read(move |conn| EnrollmentToken::find(conn, id))
        .await?
        .as_ref()
        .map(view)
        .ok_or_else(|| ApiError::NotFound(format!("no enrollment token has id {id}")))
}

/// Revokes token `id`: machines that enrolled with it keep their own tokens; no new machine
/// can enroll with it.
pub async fn revoke(state: &AppState, caller: &Caller, id: i64) -> Result<TokenView, ApiError> {
    let revoked = state
        .writer
        .send(RevokeEnrollmentToken {
            id,
            actor: caller.audit_name(),
        })
        .await??;
    revoked
        .as_ref()
        .map(view)
        .ok_or_else(|| ApiError::NotFound(format!("no enrollment token has id {id}")))
}

/// The shell lines an admin runs on a lab machine to enroll it: the token goes into a file
/// readable only by its owner and the agent reads the file, so the token never appears on a
/// command line that `ps` shows.
pub fn agent_command(allocator_url: &str, token: &str) -> String {
    format!(
        "install -d -m 700 /var/lib/lablink\n\
         install -m 600 /dev/null /var/lib/lablink/enrollment-token\n\
         cat > /var/lib/lablink/enrollment-token <<'EOF'\n{token}\nEOF\n\
         ALLOCATOR_URL={allocator_url} VM_NAME=\"$(hostname)\" \\\n\
         LABLINK_ENROLLMENT_TOKEN_FILE=/var/lib/lablink/enrollment-token \\\n\
         LABLINK_TOKEN_FILE=/var/lib/lablink/vm-token \\\n\
         lablink-client"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_at_the_edge() {
        let ok = checked(NewTokenRequest {
            label: "  lab bench 3 ".into(),
            expires_in_secs: Some(3600),
            max_uses: Some(4),
        })
        .expect("valid");
        assert_eq!(ok.label, "lab bench 3");
        for bad in [
            NewTokenRequest {
                label: "x".repeat(101),
                ..Default::default()
            },
            NewTokenRequest {
                label: "a\rb".into(),
                ..Default::default()
            },
            NewTokenRequest {
                expires_in_secs: Some(0),
                ..Default::default()
            },
            NewTokenRequest {
                expires_in_secs: Some(MAX_TTL_SECS + 1),
                ..Default::default()
            },
            NewTokenRequest {
                max_uses: Some(0),
                ..Default::default()
            },
        ] {
            assert!(checked(bad).is_err());
        }
    }

    #[test]
    fn the_command_keeps_the_token_off_the_command_line() {
        let command = agent_command("https://lab.example", "lle_secret");
        let last = command.lines().last().expect("lines");
        assert_eq!(last, "lablink-client");
        assert!(command.contains("LABLINK_ENROLLMENT_TOKEN_FILE="));
        // The token appears only in the here-document, never in an argument.
        let with_token: Vec<&str> = command
            .lines()
            .filter(|l| l.contains("lle_secret"))
            .collect();
        assert_eq!(with_token, vec!["lle_secret"]);
    }
}
