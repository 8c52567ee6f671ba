# LabLink client VMs on this machine: each "VM" is an agent process started in the
# background. Same variables and outputs as terraform/aws, built only from Terraform's
# built-in resources, so it needs no provider download and no cloud.
#
# Values reach the shell only through environment variables, never by interpolation into the
# command text.

terraform {
  required_version = ">= 1.4"
}

locals {
  state_dir = var.state_dir != "" ? var.state_dir : path.cwd
}

resource "terraform_data" "vm" {
  for_each = var.vm_names

  # Only the name and where its files live: changing a token or the agent command never
  # replaces a running VM.
  input = {
    name     = each.key
    pid_file = "${local.state_dir}/${each.key}.pid"
  }

  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    command     = <<-EOT
      set -eu
      sleep "$STARTUP_DELAY"
      mkdir -p "$(dirname "$PID_FILE")"
      nohup "$AGENT" >"$LOG_FILE" 2>&1 </dev/null &
      echo $! >"$PID_FILE"
    EOT
    environment = {
      AGENT            = var.agent_command
      PID_FILE         = "${local.state_dir}/${each.key}.pid"
      LOG_FILE         = "${local.state_dir}/${each.key}.log"
      STARTUP_DELAY    = tostring(var.startup_delay_seconds)
      ALLOCATOR_URL    = var.allocator_url
      VM_NAME          = each.key
      SUBJECT_SOFTWARE = var.subject_software
      LABLINK_VM_TOKEN = lookup(var.vm_tokens, each.key, "")
      LABLINK_DESKTOP  = var.desktop
    }
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["/bin/sh", "-c"]
    command     = <<-EOT
      if [ -f "$PID_FILE" ]; then
        kill "$(cat "$PID_FILE")" 2>/dev/null || true
        rm -f "$PID_FILE"
      fi
    EOT
    environment = {
      PID_FILE = self.input.pid_file
    }
  }
}
