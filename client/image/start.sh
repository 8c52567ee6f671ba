#!/bin/bash
# The client container's entry point: fetch the workshop's material, then hand the process
# over to the agent, which registers, waits for its participant and starts the desktop.
set -euo pipefail

if [ -n "${TUTORIAL_REPO_TO_CLONE:-}" ]; then
  cd /home/client/Desktop
  # `--` keeps a value starting with `-` from being read as an option.
  git clone --depth 1 -- "$TUTORIAL_REPO_TO_CLONE" \
    || echo "lablink-start: could not clone $TUTORIAL_REPO_TO_CLONE; continuing without it" >&2
  cd /home/client
fi

if [ "${LABLINK_BROWSER_DESKTOP:-off}" = on ]; then
  /usr/local/lib/lablink/vnc-desktop.sh
fi

exec /usr/local/bin/lablink-client
