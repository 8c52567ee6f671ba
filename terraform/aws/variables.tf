# --- the variables every LabLink client-VM module takes ---------------------------------

variable "vm_names" {
  description = "Hostnames of the VMs that should exist. Adding names creates those VMs; removing names destroys only those."
  type        = set(string)
}

variable "vm_tokens" {
  description = "Bearer token for each VM being created, by hostname (handed to its agent through user data). VMs that already exist are not in this map and are left untouched."
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

# --- AWS --------------------------------------------------------------------------------

variable "region" {
  description = "AWS region of the VMs."
  type        = string
  default     = "us-west-2"
}

variable "deployment" {
  description = "Name of this LabLink deployment; prefixes resource names and tags every resource."
  type        = string
  default     = "lablink"
}

variable "instance_type" {
  description = "EC2 instance type. GPU images need an NVIDIA GPU type (g4dn, g5, g6, p…); the allocator checks this before launching."
  type        = string
  default     = "g4dn.xlarge"
}

variable "ami_id" {
  description = "AMI of the client VMs: Ubuntu with Docker and, for GPU types, the NVIDIA driver and container toolkit."
  type        = string
}

variable "client_image" {
  description = "Container image with the research software, Chrome Remote Desktop and lablink-client."
  type        = string
  default     = "ghcr.io/talmolab/lablink-client-base-image:latest"
}

variable "repository" {
  description = "Git repository cloned onto each VM's desktop (tutorial data); empty for none."
  type        = string
  default     = ""
}

variable "gpu" {
  description = "Run the client container with the NVIDIA runtime and all GPUs."
  type        = bool
  default     = true
}

variable "root_volume_gb" {
  description = "Size of each VM's root disk, in GB."
  type        = number
  default     = 80
}

variable "ssh_cidr_blocks" {
  description = "Networks allowed to reach the VMs on SSH (port 22). Empty (the default): SSH is closed."
  type        = list(string)
  default     = []
}

variable "key_name" {
  description = "Existing EC2 key pair for SSH; empty for none."
  type        = string
  default     = ""
}

variable "subnet_id" {
  description = "Subnet for the VMs; empty for the default VPC's default subnet."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
