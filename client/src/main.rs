//! The `lablink-client` command run on each VM.

use std::process::ExitCode;

use lablink_client::settings::AgentSettings;

fn main() -> ExitCode {
    match AgentSettings::from_env() {
        Ok(settings) => {
            eprintln!(
                "lablink-client: settings for {} are valid, but the agent's actors are not \
                 built yet; use the original client services until they are",
                settings.vm_name
            );
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("lablink-client: {err}");
            ExitCode::from(2)
        }
    }
}
