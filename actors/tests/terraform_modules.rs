//! The client-VM modules: formatted, the local one valid, and both offering the variables
//! and outputs the allocator relies on (so switching provider needs no code change).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn module(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../terraform")
        .join(name)
}

/// `kind "name"` declarations (variables or outputs) in a module's `.tf` files.
fn declared(dir: &Path, kind: &str) -> BTreeSet<String> {
    let prefix = format!("{kind} \"");
    std::fs::read_dir(dir)
        .expect("module dir")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "tf"))
        .flat_map(|e| {
            std::fs::read_to_string(e.path())
                .expect("read")
                .lines()
                .filter_map(|line| {
                    line.strip_prefix(&prefix)
                        .and_then(|rest| rest.split('"').next())
                        .map(str::to_owned)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn both_modules_take_the_variables_and_give_the_outputs_the_allocator_uses() {
    let common_variables = ["allocator_url", "subject_software", "vm_names", "vm_tokens"];
    let common_outputs = ["vm_instance_ids", "vm_names"];
    for name in ["local", "aws"] {
        let variables = declared(&module(name), "variable");
        let outputs = declared(&module(name), "output");
        for variable in common_variables {
            assert!(
                variables.contains(variable),
                "terraform/{name} lacks variable {variable}"
            );
        }
        for output in common_outputs {
            assert!(
                outputs.contains(output),
                "terraform/{name} lacks output {output}"
            );
        }
    }
}

#[test]
fn the_aws_module_keeps_ssh_closed_and_attachments_non_exclusive() {
    let main = std::fs::read_to_string(module("aws").join("main.tf")).expect("main.tf");
    assert!(
        !main.contains("resource \"aws_iam_policy_attachment\""),
        "exclusive attachments detach policies from other roles"
    );
    assert!(main.contains("resource \"aws_iam_role_policy_attachment\""));
    let variables =
        std::fs::read_to_string(module("aws").join("variables.tf")).expect("variables.tf");
    let ssh = variables
        .split("variable \"ssh_cidr_blocks\"")
        .nth(1)
        .expect("ssh_cidr_blocks");
    assert!(
        ssh.contains("default     = []"),
        "SSH must be closed by default"
    );
    assert!(
        main.contains("dynamic \"ingress\""),
        "SSH ingress exists only when networks are listed"
    );
}

#[test]
fn modules_are_formatted_and_the_local_one_validates() {
    if Command::new("terraform").arg("version").output().is_err() {
        eprintln!("SKIPPED: the terraform CLI is not installed");
        return;
    }
    let fmt = Command::new("terraform")
        .args(["fmt", "-check", "-recursive"])
        .current_dir(module(""))
        .output()
        .expect("terraform fmt");
    assert!(
        fmt.status.success(),
        "not formatted: {}",
        String::from_utf8_lossy(&fmt.stdout)
    );

    let work = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(module("local"))
        .expect("module")
        .flatten()
    {
        std::fs::copy(entry.path(), work.path().join(entry.file_name())).expect("copy");
    }
    for args in [
        &["init", "-input=false", "-backend=false"][..],
        &["validate", "-no-color"][..],
    ] {
        let output = Command::new("terraform")
            .args(args)
            .current_dir(work.path())
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .output()
            .expect("terraform");
        assert!(
            output.status.success(),
            "terraform {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
