#!/usr/bin/env bash
# Installs checkov (pinned in tools/requirements-checkov.txt) into its own virtualenv .tools/checkov and
# links .tools/bin/checkov, where the tests look for it. Safe to run again: reinstalls only when the pin changes.
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=tools/requirements-checkov.txt
venv=.tools/checkov
stamp="$venv/.requirements"

if [ ! -x "$venv/bin/checkov" ] || ! cmp -s "$requirements" "$stamp"; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi
mkdir -p .tools/bin
ln -sf ../checkov/bin/checkov .tools/bin/checkov
.tools/bin/checkov --version
