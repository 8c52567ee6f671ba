//! The Terraform provisioner: runs the `terraform` CLI on a client-VM module (terraform/aws
//! in production, terraform/local for tests and trying LabLink), as a child process without
//! a shell, with `-json` output turned into progress lines.
//!
//! The module is copied into a working directory of our own (which also holds `.terraform`
//! and, with the default local backend, the state), so the shipped module can stay
//! read-only. Variables go in as `TF_VAR_*` environment variables: tokens never touch disk.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{ProgressLine, ProgressSender, ProvisionError, Provisioner, Recovered, VmSpec};

/// Where the pid of a running `terraform` is kept, so a restarted allocator can stop a run
/// its crashed predecessor left behind.
const PID_FILE: &str = "lablink-terraform.pid";
/// An empty CLI configuration, so terraform does not warn about a missing ~/.terraformrc.
const CLI_CONFIG_FILE: &str = "lablink-terraform.rc";

/// How to run Terraform.
#[derive(Debug, Clone)]
pub struct TerraformCli {
    /// The `terraform` program.
    pub binary: PathBuf,
    /// The module, e.g. `terraform/aws` (its `*.tf` files are copied).
    pub module_dir: PathBuf,
    /// Our working directory: module copy, `.terraform`, local state.
    pub work_dir: PathBuf,
    /// Base URL the agents use to reach the allocator.
    pub allocator_url: String,
    /// Further module variables (`name → value`, passed as `TF_VAR_name`).
    pub variables: BTreeMap<String, String>,
}

impl TerraformCli {
    fn prepare(&self) -> Result<(), ProvisionError> {
        let fail = |what: &str, err: std::io::Error| ProvisionError(format!("{what}: {err}"));
        std::fs::create_dir_all(&self.work_dir)
            .map_err(|e| fail("cannot create the working directory", e))?;
        let entries = std::fs::read_dir(&self.module_dir).map_err(|e| {
            fail(
                &format!("cannot read the module {}", self.module_dir.display()),
                e,
            )
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let is_module_file = path
                .extension()
                .is_some_and(|ext| ext == "tf" || ext == "sh" || ext == "tpl");
            if is_module_file {
                std::fs::copy(&path, self.work_dir.join(entry.file_name()))
                    .map_err(|e| fail("cannot copy the module", e))?;
            }
        }
        std::fs::write(self.work_dir.join(CLI_CONFIG_FILE), "")
            .map_err(|e| fail("cannot write the CLI config", e))?;
        Ok(())
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .args(args)
            .current_dir(&self.work_dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("TF_CLI_CONFIG_FILE", self.work_dir.join(CLI_CONFIG_FILE))
            .env("TF_VAR_allocator_url", &self.allocator_url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a restart can stop it and anything it started; and
            // killed if this future is dropped (the allocator stopping).
            .process_group(0)
            .kill_on_drop(true);
        for (name, value) in &self.variables {
            command.env(format!("TF_VAR_{name}"), value);
        }
        command
    }

    /// Runs terraform with `args`, streaming its output to `progress`.
    async fn run(
        &self,
        args: &[&str],
        env: &[(&str, String)],
        progress: &ProgressSender,
    ) -> Result<(), ProvisionError> {
        let mut command = self.command(args);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().map_err(|err| {
            ProvisionError(format!("cannot run {}: {err}", self.binary.display()))
        })?;
        let pid_file = self.work_dir.join(PID_FILE);
        if let Some(pid) = child.id() {
            let _ = std::fs::write(&pid_file, pid.to_string());
        }
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let mut last_error: Option<String> = None;
        let forward_stdout = async {
            let mut errors = None;
            if let Some(stdout) = stdout {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(progress_line) = parse_json_line(&line) {
                        if progress_line.level == "error" {
                            errors = Some(progress_line.message.clone());
                        }
                        let _ = progress.send(progress_line);
                    }
                }
            }
            errors
        };
        let forward_stderr = async {
            let mut text = Vec::new();
            if let Some(stderr) = stderr {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let line = strip_ansi(&line);
                    if !line.trim().is_empty() {
                        let _ = progress.send(ProgressLine::error(line.clone()));
                        text.push(line);
                    }
                }
            }
            text
        };
        let (stdout_error, stderr_text) = tokio::join!(forward_stdout, forward_stderr);
        if let Some(error) = stdout_error {
            last_error = Some(error);
        }
        let status = child
            .wait()
            .await
            .map_err(|err| ProvisionError(format!("terraform did not finish: {err}")))?;
        let _ = std::fs::remove_file(&pid_file);
        if status.success() {
            return Ok(());
        }
        let reason = last_error
            .or_else(|| stderr_text.last().cloned())
            .unwrap_or_else(|| {
                format!(
                    "terraform {} exited with {status}",
                    args.first().copied().unwrap_or("")
                )
            });
        Err(ProvisionError(reason))
    }

    async fn init(&self, progress: &ProgressSender) -> Result<(), ProvisionError> {
        if self.work_dir.join(".terraform").is_dir() {
            return Ok(());
        }
        let _ = progress.send(ProgressLine::info("terraform init"));
        self.run(&["init", "-input=false", "-no-color"], &[], progress)
            .await
    }

    async fn output_names(&self) -> Result<Vec<String>, ProvisionError> {
        if !self.work_dir.join("terraform.tfstate").exists() && !self.uses_remote_state() {
            return Ok(Vec::new());
        }
        let output = self
            .command(&["output", "-json", "vm_names"])
            .output()
            .await
            .map_err(|err| ProvisionError(format!("cannot run terraform output: {err}")))?;
        if !output.status.success() {
            // No output yet (empty state): nothing exists.
            return Ok(Vec::new());
        }
        serde_json::from_slice(&output.stdout)
            .map_err(|err| ProvisionError(format!("unexpected `terraform output vm_names`: {err}")))
    }

    /// A module with a backend block keeps its state elsewhere (S3, PostgreSQL).
    fn uses_remote_state(&self) -> bool {
        std::fs::read_dir(&self.work_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|ext| ext == "tf"))
            .any(|e| {
                std::fs::read_to_string(e.path())
                    .map(|text| text.contains("backend \""))
                    .unwrap_or(false)
            })
    }
}

fn names_and_tokens(desired: &[VmSpec]) -> (String, String) {
    let names: Vec<&str> = desired.iter().map(|vm| vm.hostname.as_str()).collect();
    let tokens: BTreeMap<&str, &str> = desired
        .iter()
        .filter_map(|vm| vm.token.as_deref().map(|t| (vm.hostname.as_str(), t)))
        .collect();
    (
        serde_json::to_string(&names).unwrap_or_else(|_| "[]".to_owned()),
        serde_json::to_string(&tokens).unwrap_or_else(|_| "{}".to_owned()),
    )
}

/// Each VM's own provider variables (its workshop's), for `var.vm_settings`; VMs with none
/// are left out and get the module's defaults. Passed for every VM, existing ones too, so a
/// converge never changes a running VM's settings.
fn vm_settings(desired: &[VmSpec]) -> String {
    let settings: BTreeMap<&str, &BTreeMap<String, String>> = desired
        .iter()
        .filter(|vm| !vm.settings.is_empty())
        .map(|vm| (vm.hostname.as_str(), &vm.settings))
        .collect();
    serde_json::to_string(&settings).unwrap_or_else(|_| "{}".to_owned())
}

impl Provisioner for TerraformCli {
    fn converge(
        &self,
        desired: Vec<VmSpec>,
        progress: ProgressSender,
    ) -> BoxFuture<'static, Result<Vec<String>, ProvisionError>> {
        let this = self.clone();
        Box::pin(async move {
            this.prepare()?;
            this.init(&progress).await?;
            let (names, tokens) = names_and_tokens(&desired);
            let settings = vm_settings(&desired);
            let _ = progress.send(ProgressLine::info("terraform apply"));
            let applied = this
                .run(
                    &["apply", "-auto-approve", "-input=false", "-json"],
                    &[
                        ("TF_VAR_vm_names", names),
                        ("TF_VAR_vm_tokens", tokens),
                        ("TF_VAR_vm_settings", settings),
                    ],
                    &progress,
                )
                .await;
            // Report what exists even after a failure, so the caller can tidy up.
            let existing = this.output_names().await;
            applied?;
            existing
        })
    }

    fn destroy_all(
        &self,
        progress: ProgressSender,
    ) -> BoxFuture<'static, Result<(), ProvisionError>> {
        let this = self.clone();
        Box::pin(async move {
            this.prepare()?;
            this.init(&progress).await?;
            let _ = progress.send(ProgressLine::info("terraform destroy"));
            this.run(
                &["destroy", "-auto-approve", "-input=false", "-json"],
                &[("TF_VAR_vm_names", "[]".to_owned())],
                &progress,
            )
            .await
        })
    }

    fn provisioned(&self) -> BoxFuture<'static, Result<Vec<String>, ProvisionError>> {
        let this = self.clone();
        Box::pin(async move { this.output_names().await })
    }

    fn instance_ids(&self) -> BoxFuture<'static, Result<BTreeMap<String, String>, ProvisionError>> {
        let this = self.clone();
        Box::pin(async move {
            if !this.work_dir.join("terraform.tfstate").exists() && !this.uses_remote_state() {
                return Ok(BTreeMap::new());
            }
            let output = this
                .command(&["output", "-json", "vm_instance_ids"])
                .output()
                .await
                .map_err(|err| ProvisionError(format!("cannot run terraform output: {err}")))?;
            if !output.status.success() {
                return Ok(BTreeMap::new());
            }
            serde_json::from_slice(&output.stdout).map_err(|err| {
                ProvisionError(format!(
                    "unexpected `terraform output vm_instance_ids`: {err}"
                ))
            })
        })
    }

    fn recover(&self) -> Result<Recovered, ProvisionError> {
        // Terraform's state says which VMs exist: nothing to adopt, nothing known gone.
        let pid_file = self.work_dir.join(PID_FILE);
        let Ok(text) = std::fs::read_to_string(&pid_file) else {
            return Ok(Recovered::default());
        };
        if let Some(pid) = text.trim().parse::<i32>().ok().filter(|pid| *pid > 1) {
            if is_terraform_group_leader(pid) {
                tracing::warn!(
                    pid,
                    "stopping a terraform run left behind by a previous allocator"
                );
                // Its own process group: stop terraform and whatever it started.
                if let Err(err) = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                ) {
                    tracing::warn!(pid, error = %err, "could not stop the old terraform run");
                }
            }
        }
        let _ = std::fs::remove_file(pid_file);
        Ok(Recovered::default())
    }
}

/// Whether `pid` is still a `terraform` process leading its own process group (a stale pid
/// file must never make us signal an unrelated process that reused the number).
fn is_terraform_group_leader(pid: i32) -> bool {
    crate::proc_stat::ProcStat::of(pid)
        .is_some_and(|stat| stat.name.starts_with("terraform") && stat.process_group == pid)
}

/// One `terraform -json` line as a progress line; lines that say nothing to an admin (the
/// version banner) are dropped.
fn parse_json_line(line: &str) -> Option<ProgressLine> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
        let text = strip_ansi(line);
        return (!text.trim().is_empty()).then(|| ProgressLine::info(text));
    };
    if value["type"] == "version" {
        return None;
    }
    let mut message = value["@message"].as_str().unwrap_or_default().to_owned();
    if value["type"] == "diagnostic" {
        if let Some(detail) = value["diagnostic"]["detail"]
            .as_str()
            .filter(|d| !d.is_empty())
        {
            message = format!("{message}: {detail}");
        }
    }
    let level = match value["@level"].as_str() {
        Some("error") => "error",
        Some("warn") => "warn",
        _ => "info",
    };
    Some(ProgressLine {
        level: level.to_owned(),
        message,
    })
}

/// Removes terminal colour codes.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_become_progress_and_errors_carry_their_detail() {
        assert_eq!(
            parse_json_line(r#"{"@level":"info","@message":"Terraform 1.11.4","type":"version"}"#),
            None
        );
        assert_eq!(
            parse_json_line(
                r#"{"@level":"info","@message":"Plan: 2 to add, 0 to change, 0 to destroy.","type":"change_summary"}"#
            ),
            Some(ProgressLine::info(
                "Plan: 2 to add, 0 to change, 0 to destroy."
            ))
        );
        let error = parse_json_line(
            r#"{"@level":"error","@message":"Error: local-exec provisioner error","type":"diagnostic","diagnostic":{"detail":"exit status 1"}}"#,
        )
        .expect("line");
        assert_eq!(error.level, "error");
        assert_eq!(
            error.message,
            "Error: local-exec provisioner error: exit status 1"
        );
        assert_eq!(
            parse_json_line("\u{1b}[31mplain text\u{1b}[0m"),
            Some(ProgressLine::info("plain text"))
        );
    }

    #[test]
    fn tokens_are_passed_only_for_new_vms() {
        let (names, tokens) = names_and_tokens(&[
            VmSpec {
                hostname: "a".into(),
                token: None,
                settings: BTreeMap::new(),
            },
            VmSpec {
                hostname: "b".into(),
                token: Some("t".into()),
                settings: BTreeMap::new(),
            },
        ]);
        assert_eq!(names, r#"["a","b"]"#);
        assert_eq!(tokens, r#"{"b":"t"}"#);
    }

    #[test]
    fn each_vm_keeps_its_own_settings_and_defaults_are_left_out() {
        let gpu = BTreeMap::from([("instance_type".to_owned(), "g5.xlarge".to_owned())]);
        let desired = [
            VmSpec {
                hostname: "a".into(),
                token: None,
                settings: gpu,
            },
            VmSpec {
                hostname: "b".into(),
                token: Some("t".into()),
                settings: BTreeMap::new(),
            },
        ];
        assert_eq!(
            vm_settings(&desired),
            r#"{"a":{"instance_type":"g5.xlarge"}}"#
        );
    }
}
