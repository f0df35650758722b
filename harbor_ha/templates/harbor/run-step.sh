#!/bin/bash
# Runs one boot step (a script beside this one, given the arguments after its name) with the node's
# settings, /etc/harbor-ha/harbor.env (names and ARNs that Terraform wrote into user-data), in its environment.
set -euo pipefail
set -a
# shellcheck source=/dev/null
. /etc/harbor-ha/harbor.env
set +a
# A VIP holder (active-standby) is reached at the Elastic IP tagged harbor-ha:vip=VIP_NAME: looked up here,
# since user-data cannot name an address whose association names this very instance.
if [ -z "${HARBOR_HOSTNAME:-}" ] && [ -n "${VIP_NAME:-}" ]; then
  HARBOR_HOSTNAME=$(aws ec2 describe-addresses --filters "Name=tag:harbor-ha:vip,Values=$VIP_NAME" \
    --query 'Addresses[0].PublicIp' --output text)
  export HARBOR_HOSTNAME
fi
step="$(dirname "$0")/$1"
# A step that user-data has no room for travels in the deployment's bucket (BOOT_PROGRAMS): fetched once. Retried:
# the role's policies may still be propagating when a new node boots.
if [ ! -e "$step" ] && [ -n "${BOOT_PROGRAMS:-}" ]; then
  for attempt in 1 2 3 4 5; do
    aws s3 cp --only-show-errors "$BOOT_PROGRAMS/$1" "$step.part" && break
    [ "$attempt" -lt 5 ] || exit 1
    sleep $((attempt * 3))
  done
  chmod 0755 "$step.part"
  mv "$step.part" "$step"
fi
exec "$step" "${@:2}"
