//! Recovering single VMs: a reboot (through the provider, else the cloud's API), which runs
//! at once beside the queue, and a replacement, which is an operation in the queue like any
//! creation. The VM's supervisor, or an admin, asks for them after recording the VM's new
//! state; the queue does not judge whether the VM needs it.

use actix::{ActorFutureExt, Handler, Message, ResponseActFuture, WrapFuture};
use chrono::Utc;
use lablink_schema::operations::{NewOperation, Operation, OperationKind};

use super::operation_run::Plan;
use super::{lease, lease_end, queue_operation, ProvisioningError, ProvisioningQueue};
use crate::provisioning::ProvisionError;

/// Reboot one VM now. Answers once the provider (or the cloud) has done it.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ProvisionError>")]
pub struct RebootVm {
    pub hostname: String,
}

impl Handler<RebootVm> for ProvisioningQueue {
    type Result = actix::ResponseFuture<Result<(), ProvisionError>>;

    fn handle(&mut self, msg: RebootVm, _: &mut Self::Context) -> Self::Result {
        let (provisioner, cloud) = (self.provisioner.clone(), self.cloud.clone());
        // The cloud's API where there is one (an EC2 reboot keeps the instance and its
        // disk); else the provider's own reboot (the local provider restarts the agent).
        let Some(cloud) = cloud else {
            return match provisioner.reboot(&msg.hostname) {
                Some(reboot) => Box::pin(reboot),
                None => Box::pin(async {
                    Err(ProvisionError(
                        "this provider cannot reboot a VM without the cloud's API \
                         (set provider.aws.enabled)"
                            .to_owned(),
                    ))
                }),
            };
        };
        Box::pin(async move {
            let instance_id = provisioner
                .instance_ids()
                .await?
                .remove(&msg.hostname)
                .ok_or_else(|| {
                    ProvisionError(format!("the provider has no VM {}", msg.hostname))
                })?;
            cloud
                .reboot(&instance_id)
                .await
                .map_err(|err| ProvisionError(format!("the cloud refused the reboot: {err}")))
        })
    }
}

/// Queue the replacement of one VM: a new VM is created and this one destroyed, in one
/// operation, so the pool keeps its size. Not counted against `max_vms` (the pool does not
/// grow).
#[derive(Debug, Message)]
#[rtype(result = "Result<Operation, ProvisioningError>")]
pub struct ReplaceVm {
    pub hostname: String,
    pub requested_by: String,
}

impl Handler<ReplaceVm> for ProvisioningQueue {
    type Result = ResponseActFuture<Self, Result<Operation, ProvisioningError>>;

    fn handle(&mut self, msg: ReplaceVm, _: &mut Self::Context) -> Self::Result {
        let writer = self.writer.clone();
        let hostname = msg.hostname.clone();
        Box::pin(
            async move {
                let mut new = NewOperation::queued(
                    OperationKind::Replace,
                    &msg.requested_by,
                    Utc::now().naive_utc(),
                )
                .leased_to(lease::this_process(), lease_end());
                new.targets = serde_json::to_string(&[&msg.hostname]).ok();
                queue_operation(&writer, new).await
            }
            .into_actor(self)
            .map(move |result, queue, ctx| {
                if let Ok(operation) = &result {
                    queue.enqueue(
                        operation,
                        Plan::Replace {
                            hostname,
                            new_name: None,
                        },
                        ctx,
                    );
                }
                result
            }),
        )
    }
}
