//! The configuration's paths made absolute once, at start, against the working directory, and
//! checked on disk: the agents and Terraform run in other working directories, so a relative
//! path handed to them would name another place (the local agents of a newcomer's try-out all
//! exited for that). After [`Config::settle_paths`] every path in the configuration is
//! absolute, except a bare program name (`terraform`), which is looked up on `PATH`.

use std::path::{Path, PathBuf};

use super::{Config, ConfigError, ProviderKind};

/// The agent program's file name, looked for beside the allocator's own executable.
pub const AGENT_PROGRAM: &str = "lablink-client";

impl Config {
    /// Makes every configured path absolute against `cwd` and checks the ones the allocator
    /// will write or run: the data directory can be created (its parent exists) or is a
    /// writable directory, and a configured agent program exists and is executable. Creates
    /// nothing.
    pub fn settle_paths(&mut self, cwd: &Path) -> Result<(), ConfigError> {
        let absolute = |path: &Path| absolute_in(cwd, path);
        self.database.data_dir = absolute(&self.database.data_dir);
        let local = &mut self.provider.local;
        local.vnc_password_file = local.vnc_password_file.as_deref().map(absolute);
        local.agent_binary = match local.agent_binary.as_deref() {
            Some(binary) => Some(program(cwd, binary)),
            None => default_agent(),
        };
        let terraform = &mut self.provider.terraform;
        terraform.binary = program(cwd, &terraform.binary);
        terraform.module_dir = absolute(&terraform.module_dir);
        terraform.work_dir = Some(
            terraform
                .work_dir
                .as_deref()
                .map_or_else(|| self.database.data_dir.join("terraform"), absolute),
        );

        check_writable_dir(&self.database.data_dir)
            .map_err(|reason| refused("database.data_dir", &self.database.data_dir, reason))?;
        match self.provider.kind {
            ProviderKind::Local => {
                if let Some(binary) = &self.provider.local.agent_binary {
                    check_program(binary)
                        .map_err(|reason| refused("provider.local.agent_binary", binary, reason))?;
                }
            }
            ProviderKind::Terraform => {
                let terraform = &self.provider.terraform;
                if !terraform.module_dir.is_dir() {
                    return Err(refused(
                        "provider.terraform.module_dir",
                        &terraform.module_dir,
                        "no such directory".to_owned(),
                    ));
                }
                if let Some(work_dir) = &terraform.work_dir {
                    // Under the data dir by default, which is checked above.
                    if !work_dir.starts_with(&self.database.data_dir) {
                        check_writable_dir(work_dir).map_err(|reason| {
                            refused("provider.terraform.work_dir", work_dir, reason)
                        })?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// `path` as an absolute path, relative ones taken from `cwd`; `.` and `..` are resolved by
/// the operating system when used, so the path is not canonicalised (links stay as written).
fn absolute_in(cwd: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    };
    // Rebuilt from its components, which drops the `.` ones (`./agent` reads `<cwd>/agent`).
    joined.components().collect()
}

/// A program as configured: a bare name stays a name (found on `PATH` when run), a path
/// becomes absolute.
fn program(cwd: &Path, program: &Path) -> PathBuf {
    if program.components().count() > 1 {
        absolute_in(cwd, program)
    } else {
        program.to_path_buf()
    }
}

/// The agent installed beside this executable (the release build, the container image), if
/// there is one; otherwise `None`, and the local provider looks for `lablink-client` on `PATH`.
fn default_agent() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(AGENT_PROGRAM)))
        .filter(|candidate| candidate.is_file())
}

/// Whether `dir` is a directory this process can write in, or can be created (its parent is
/// such a directory). Writes nothing that stays.
fn check_writable_dir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => return Err("it exists and is not a directory".to_owned()),
        Ok(_) => return check_can_write_in(dir),
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("cannot read it: {err}"))
        }
        Err(_) => {}
    }
    let parent = dir
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .ok_or_else(|| "it has no parent directory".to_owned())?;
    match std::fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => check_can_write_in(parent)
            .map_err(|reason| format!("it cannot be created in {}: {reason}", parent.display())),
        Ok(_) => Err(format!("{} is not a directory", parent.display())),
        Err(_) => Err(format!(
            "its parent directory {} does not exist",
            parent.display()
        )),
    }
}

/// Creates and removes a probe file in `dir`: the only sure test of writability (the mode
/// bits say nothing of read-only mounts or of root's privileges).
fn check_can_write_in(dir: &Path) -> Result<(), String> {
    let probe = dir.join(format!(".lablink-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|err| format!("not writable: {err}"))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Whether `program` (a path, or a bare name found on `PATH`) is an executable file; if not,
/// why.
pub fn check_program(program: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let path = if program.components().count() > 1 {
        program.to_path_buf()
    } else {
        std::env::var_os("PATH")
            .and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(program))
                    .find(|candidate| candidate.is_file())
            })
            .ok_or_else(|| "not found on PATH".to_owned())?
    };
    let meta = std::fs::metadata(&path).map_err(|err| format!("cannot be used: {err}"))?;
    if !meta.is_file() {
        return Err("not a file".to_owned());
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err("not executable".to_owned());
    }
    Ok(())
}

fn refused(key: &str, path: &Path, reason: String) -> ConfigError {
    ConfigError::Path {
        key: key.to_owned(),
        path: path.display().to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_become_absolute_against_the_working_directory() {
        let cwd = tempfile::tempdir().expect("dir");
        let mut config = Config::default();
        config.provider.terraform.module_dir = "modules/lab".into();
        config.provider.local.vnc_password_file = Some("vnc/passwd".into());
        config.settle_paths(cwd.path()).expect("settled");
        assert_eq!(config.database.data_dir, cwd.path().join("lablink-data"));
        assert_eq!(
            config.provider.terraform.work_dir,
            Some(cwd.path().join("lablink-data/terraform"))
        );
        assert_eq!(
            config.provider.terraform.module_dir,
            cwd.path().join("modules/lab")
        );
        assert_eq!(
            config.provider.local.vnc_password_file,
            Some(cwd.path().join("vnc/passwd"))
        );
        // A bare program name is looked up on PATH when run.
        assert_eq!(config.provider.terraform.binary, PathBuf::from("terraform"));
        assert!(!cwd.path().join("lablink-data").exists(), "nothing created");
    }

    #[test]
    fn terraform_needs_its_module_and_a_work_dir_it_can_make() {
        let cwd = tempfile::tempdir().expect("dir");
        let mut config = Config::default();
        config.provider.kind = ProviderKind::Terraform;
        config.provider.terraform.module_dir = "modules/none".into();
        let text = config
            .settle_paths(cwd.path())
            .expect_err("refused")
            .to_string();
        assert!(text.contains("provider.terraform.module_dir"), "{text}");

        std::fs::create_dir_all(cwd.path().join("modules/lab")).expect("module");
        let mut config = Config::default();
        config.provider.kind = ProviderKind::Terraform;
        config.provider.terraform.module_dir = "modules/lab".into();
        config.provider.terraform.work_dir = Some("no/such/tf".into());
        let text = config
            .settle_paths(cwd.path())
            .expect_err("refused")
            .to_string();
        assert!(text.contains("provider.terraform.work_dir"), "{text}");

        let mut config = Config::default();
        config.provider.kind = ProviderKind::Terraform;
        config.provider.terraform.module_dir = "modules/lab".into();
        config
            .settle_paths(cwd.path())
            .expect("the default work dir is under the data dir");
    }

    #[test]
    fn a_data_dir_whose_parent_is_missing_or_not_a_directory_is_refused() {
        let cwd = tempfile::tempdir().expect("dir");
        let mut config = Config::default();
        config.database.data_dir = "missing/data".into();
        let err = config.settle_paths(cwd.path()).expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("database.data_dir"), "{text}");
        assert!(text.contains("does not exist"), "{text}");
        assert!(!cwd.path().join("missing").exists());

        std::fs::write(cwd.path().join("file"), "x").expect("file");
        let mut config = Config::default();
        config.database.data_dir = "file".into();
        let text = config
            .settle_paths(cwd.path())
            .expect_err("refused")
            .to_string();
        assert!(text.contains("not a directory"), "{text}");
    }

    #[test]
    fn a_configured_agent_that_is_missing_or_not_executable_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let cwd = tempfile::tempdir().expect("dir");
        let mut config = Config::default();
        config.provider.local.agent_binary = Some("bin/lablink-client".into());
        let text = config
            .settle_paths(cwd.path())
            .expect_err("refused")
            .to_string();
        assert!(text.contains("provider.local.agent_binary"), "{text}");
        assert!(
            text.contains(&cwd.path().join("bin/lablink-client").display().to_string()),
            "the absolute path is named: {text}"
        );

        let agent = cwd.path().join("agent");
        std::fs::write(&agent, "#!/bin/sh\n").expect("agent");
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o644)).expect("mode");
        let mut config = Config::default();
        config.provider.local.agent_binary = Some("./agent".into());
        let text = config
            .settle_paths(cwd.path())
            .expect_err("refused")
            .to_string();
        assert!(text.contains("not executable"), "{text}");

        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).expect("mode");
        let mut config = Config::default();
        config.provider.local.agent_binary = Some("./agent".into());
        config
            .settle_paths(cwd.path())
            .expect("an executable agent is accepted");
        assert_eq!(
            config.provider.local.agent_binary,
            Some(cwd.path().join("agent"))
        );
    }
}
