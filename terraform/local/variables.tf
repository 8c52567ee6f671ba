# The variables every LabLink client-VM module takes (terraform/aws has the same, plus
# cloud-specific ones). The allocator sets them through TF_VAR_* environment variables.

variable "vm_names" {
  description = "Hostnames of the VMs that should exist. Adding names creates those VMs; removing names destroys only those."
  type        = set(string)
}

variable "vm_tokens" {
  description = "Bearer token for each VM being created, by hostname. VMs that already exist are not in this map and are left untouched."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "vm_settings" {
  description = "Per-VM overrides of this module's variables (a workshop's own instance type or image), by hostname. Every existing VM is in it with the settings it was made with, so a change never touches a running VM. VMs not in it get the defaults."
  type        = map(map(string))
  default     = {}
}

variable "allocator_url" {
  description = "Base URL the agents use to reach the allocator, e.g. https://lablink.example.org."
  type        = string
}

variable "subject_software" {
  description = "Research software whose running process marks a VM as in use."
  type        = string
  default     = "sleap"
}

# --- local only -------------------------------------------------------------------------

variable "agent_command" {
  description = "The agent program to start for each VM (lablink-client)."
  type        = string
  default     = "lablink-client"
}

variable "state_dir" {
  description = "Directory for each VM's pid and log file. Empty: the working directory."
  type        = string
  default     = ""
}

variable "desktop" {
  description = "LABLINK_DESKTOP for the agents: `log` records sessions instead of starting Chrome Remote Desktop, which a developer machine does not have."
  type        = string
  default     = "log"
}

variable "startup_delay_seconds" {
  description = "Wait this long before starting each agent (to rehearse slow provisioning in tests)."
  type        = number
  default     = 0
}
