//! The allocator's actors and the plain traits they drive. No actix-web here: the HTTP layer
//! in `lablink-allocator` turns requests into messages for these actors.
//!
//! - [`DbWriter`](db_writer::DbWriter): every database write, each in one transaction.
//!   Enrollment's writes are in [`enrollment_writes`], the API tokens' in
//!   [`api_token_writes`], the replacements' back-off in [`boot_failure_writes`].
//! - [`ClaimBatcher`](claim_batcher::ClaimBatcher): researchers' claims, many to a
//!   transaction under load.
//! - [`ReportBatcher`](report_batcher::ReportBatcher): agents' status, heartbeat, GPU and
//!   in-use reports, batched the same way (both through a
//!   [`BatchQueue`](batch_queue::BatchQueue)).
//! - [`NotificationListener`](notification_listener::NotificationListener): turns the
//!   PostgreSQL `vm_updates` channel into [`VmEvent`](change_feed::VmEvent)s.
//! - [`ChangeHub`](change_feed::ChangeHub): hands those events to every subscriber.
//! - [`ProvisioningQueue`](provisioning_queue::ProvisioningQueue): the queue of
//!   provisioning operations, run through a [`Provisioner`](provisioning::Provisioner).
//! - [`VmSupervisor`](vm_supervisor::VmSupervisor) and one
//!   [`VmActor`](vm_actor::VmActor) per VM: the agents waiting for their assignment.

pub mod api_token_writes;
pub mod batch_queue;
pub mod boot_failure_writes;
pub mod change_feed;
pub mod claim_batcher;
pub mod db_writer;
pub mod enrollment_writes;
pub mod lease;
pub mod lifecycle;
pub mod lifecycle_writes;
pub mod notification_listener;
pub mod outbox_sender;
pub mod proc_stat;
pub mod provisioning;
pub mod provisioning_queue;
pub mod report_batcher;
pub mod session_limits;
pub mod tokens;
pub mod vm_actor;
pub mod vm_supervisor;
pub mod workshop_scheduler;
pub mod workshop_writes;
