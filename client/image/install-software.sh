#!/bin/bash
# The research software hook of the client image, run once at build time as the participant
# (`client`). This default installs SLEAP in a conda environment from Miniforge; give the
# image another script with --build-arg SOFTWARE_SCRIPT=… for other software, and set
# SUBJECT_SOFTWARE to the name of its program so the agent sees when it runs.
set -euo pipefail

SLEAP_VERSION="${SLEAP_VERSION:-1.4.1}"
MINIFORGE="$HOME/miniforge3"

curl -fsSL -o /tmp/miniforge.sh \
  "https://github.com/conda-forge/miniforge/releases/latest/download/Miniforge3-Linux-x86_64.sh"
bash /tmp/miniforge.sh -b -p "$MINIFORGE"
rm /tmp/miniforge.sh
"$MINIFORGE/bin/conda" config --set auto_activate_base false
"$MINIFORGE/bin/conda" init bash

"$MINIFORGE/bin/mamba" create -y -n sleap \
  -c conda-forge -c nvidia -c sleap -c anaconda "sleap=${SLEAP_VERSION}"
"$MINIFORGE/bin/conda" clean -afy
