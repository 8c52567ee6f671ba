//! The provisioner the configuration asks for, and what becomes of the local provider's
//! agents when the allocator stops gracefully (`provider.local.stop_agents_on_exit`).

use std::sync::Arc;

use actix::Addr;
use lablink_actors::db_writer::{DbWriter, RemoveVms};
use lablink_actors::provisioning::local::{AgentExit, LocalAgents};
use lablink_actors::provisioning::terraform::TerraformCli;
use lablink_actors::provisioning::Provisioner;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::paths::{check_program, AGENT_PROGRAM};
use crate::config::{Config, ProviderKind};

/// The local provider's agents, as the allocator leaves them at a graceful stop.
#[derive(Debug)]
pub struct LocalAgentsAtStop {
    agents: Arc<LocalAgents>,
    /// Stop them and remove their VMs (the default), or leave them for the next allocator.
    stop: bool,
}

impl LocalAgentsAtStop {
    /// Stops the agents and removes their VMs, or leaves them running; says which in the log.
    pub async fn carry_out(&self, writer: &Addr<DbWriter>) {
        if !self.stop {
            let running = self.agents.provisioned().await.unwrap_or_default();
            tracing::info!(
                count = running.len(),
                "leaving the local agents running (provider.local.stop_agents_on_exit is false); \
                 the next allocator adopts them"
            );
            return;
        }
        // Logged, not streamed: no operation carries this.
        let (progress, _lines) = tokio::sync::mpsc::unbounded_channel();
        let stopped = self.agents.stop_all(&progress).await;
        let gone = match stopped {
            Ok(gone) => gone,
            Err(err) => {
                tracing::error!(error = %err, "could not stop every local agent");
                // Whatever did stop is gone; a later allocator finds the rest.
                Vec::new()
            }
        };
        let count = gone.len();
        if !gone.is_empty()
            && !matches!(writer.send(RemoveVms { hostnames: gone }).await, Ok(Ok(_)))
        {
            tracing::error!("cannot remove the stopped local agents' VMs; the next allocator does");
        }
        tracing::info!(
            count,
            "stopped the local agents and removed their VMs, so nothing is left running; set \
             provider.local.stop_agents_on_exit to false to keep them across restarts"
        );
    }
}

/// The provisioner the configuration asks for, with what the local provider needs beside it.
#[allow(missing_debug_implementations)] // a provisioner is a trait object without Debug
pub struct ProviderSetup {
    pub provisioner: Arc<dyn Provisioner>,
    /// The local provider's agents, to deal with at stop.
    pub at_stop: Option<LocalAgentsAtStop>,
    /// The local agents' own exits, to record on their VMs
    /// ([`lablink_actors::provisioning::local::exit_recorder`]).
    pub agent_exits: Option<UnboundedReceiver<AgentExit>>,
}

/// The provisioner the configuration asks for, and, for the local provider, its agents to
/// deal with at stop and their exits to record.
pub fn provisioner(config: &Config) -> ProviderSetup {
    let allocator_url = config.agent_facing_url();
    match config.provider.kind {
        ProviderKind::Local => {
            // Settled at load: absolute, or the agent beside this executable; unset only
            // when neither is there, and then found on PATH if anywhere.
            let agent_binary = config
                .provider
                .local
                .agent_binary
                .clone()
                .unwrap_or_else(|| AGENT_PROGRAM.into());
            if check_program(&agent_binary).is_err() {
                tracing::warn!(
                    agent = %agent_binary.display(),
                    "the local provider cannot find the agent program, so creating VMs will fail; \
                     build it with `cargo build --release -p lablink-client` or set provider.local.agent_binary"
                );
            }
            let stop = config.provider.local.stop_agents_on_exit;
            let (exits, agent_exits) = tokio::sync::mpsc::unbounded_channel();
            let agents = Arc::new(
                LocalAgents::new(
                    agent_binary,
                    config.database.data_dir.join("agents"),
                    allocator_url,
                )
                .reporting_exits_to(exits)
                .outliving_the_allocator(!stop)
                .counting_as_software(config.provider.local.software_pattern.clone())
                .with_vnc_at(
                    config.provider.local.vnc_addr.clone(),
                    config.provider.local.vnc_password_file.clone(),
                ),
            );
            let at_stop = LocalAgentsAtStop {
                agents: agents.clone(),
                stop,
            };
            ProviderSetup {
                provisioner: agents,
                at_stop: Some(at_stop),
                agent_exits: Some(agent_exits),
            }
        }
        ProviderKind::Terraform => ProviderSetup {
            provisioner: Arc::new(TerraformCli {
                binary: config.provider.terraform.binary.clone(),
                module_dir: config.provider.terraform.module_dir.clone(),
                work_dir: config
                    .provider
                    .terraform
                    .work_dir
                    .clone()
                    .unwrap_or_else(|| config.database.data_dir.join("terraform")),
                allocator_url,
                variables: config.provider.terraform.variables.clone(),
            }),
            at_stop: None,
            agent_exits: None,
        },
    }
}
