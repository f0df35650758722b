#!/bin/bash
# Runs one boot step (a script beside this one) with the node's settings, /etc/harbor-ha/harbor.env
# (names and ARNs that Terraform wrote into user-data), in its environment.
set -euo pipefail
set -a
# shellcheck source=/dev/null
. /etc/harbor-ha/harbor.env
set +a
exec "$(dirname "$0")/$1"
