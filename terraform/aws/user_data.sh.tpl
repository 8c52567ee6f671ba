#!/bin/bash
# Cloud-init for a LabLink client VM: report progress to the allocator, then start the client
# container, whose lablink-client agent registers with this VM's token and waits for work.
set -euo pipefail

VM_NAME='${vm_name}'
ALLOCATOR_URL='${allocator_url}'
VM_TOKEN='${vm_token}'

report() {
  curl -s -X POST "$ALLOCATOR_URL/api/vm-status" \
    -H "Content-Type: application/json" \
    -H "Authorization: Bearer $VM_TOKEN" \
    -d "{\"hostname\": \"$VM_NAME\", \"status\": \"$1\"}" --max-time 5 || true
}
trap 'report error' ERR

report initializing

# Keep the token out of the process list and the environment of other processes.
# Owned by uid 1000, the client image's participant account, which runs the agent.
install -d -m 0700 -o 1000 -g 1000 /var/lib/lablink
printf '%s' "$VM_TOKEN" > /var/lib/lablink/token
chmod 0600 /var/lib/lablink/token
chown 1000:1000 /var/lib/lablink/token

# The agent ships its logs from a spool on this disk, and this boot log as source `boot`
# (readable to it; every line is masked of secrets before it leaves the VM).
install -d -m 0700 -o 1000 -g 1000 /var/lib/lablink/log-spool
chmod 0644 /var/log/cloud-init-output.log || true

GPU_FLAGS=()
%{ if gpu ~}
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi -pm 1 || true
  GPU_FLAGS=(--runtime=nvidia --gpus all)
else
  echo "this AMI has no NVIDIA driver; starting without GPUs" >&2
fi
%{ endif ~}

docker pull '${client_image}'
docker run -d --restart unless-stopped --network host "$${GPU_FLAGS[@]}" \
  -e ALLOCATOR_URL="$ALLOCATOR_URL" \
  -e VM_NAME="$VM_NAME" \
  -e SUBJECT_SOFTWARE='${subject_software}' \
  -e TUTORIAL_REPO_TO_CLONE='${repository}' \
  -e LABLINK_TOKEN_FILE=/var/lib/lablink/token \
  -v /var/lib/lablink/token:/var/lib/lablink/token:ro \
  -e LABLINK_LOG_SPOOL_DIR=/var/lib/lablink/log-spool \
  -v /var/lib/lablink/log-spool:/var/lib/lablink/log-spool \
  -e LABLINK_BOOT_LOG=/var/log/lablink-boot/cloud-init-output.log \
  -v /var/log/cloud-init-output.log:/var/log/lablink-boot/cloud-init-output.log:ro \
  '${client_image}'
