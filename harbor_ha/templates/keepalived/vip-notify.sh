#!/bin/bash
# vip-notify NAME: keepalived's notify_master program. Moves the VIP - the Elastic IP tagged
# harbor-ha:vip=NAME - to this instance, so that clients follow the VRRP master.
#
# Idempotent: when the address is already on this instance nothing is changed. The address is found by
# its tag rather than by an allocation id written into user-data, so the instances do not depend on the
# Elastic IP (whose initial association depends on an instance). Every AWS call is retried with
# exponential backoff; progress goes to stdout and syslog.
# (No dollar-brace expansions: this text travels inside Terraform strings, where they would be interpolated.)
set -euo pipefail

readonly TAG_KEY="harbor-ha:vip"
if [ $# -ne 1 ]; then
  echo "usage: vip-notify NAME" >&2
  exit 2
fi
name=$1
# The instance metadata service (IMDSv2). Overridable only so that tests can stand in for it on loopback.
imds=$(printenv HARBOR_HA_IMDS_ENDPOINT || echo http://169.254.169.254)
attempts=$(printenv HARBOR_HA_NOTIFY_ATTEMPTS || echo 6)

log() {
  echo "vip-notify: $*"
  logger -t harbor-vip-notify -- "$*" 2>/dev/null || true
}

metadata() {
  local token
  token=$(curl -fsS --max-time 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$imds/latest/api/token")
  curl -fsS --max-time 2 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/$1"
}

move_vip() {
  local instance region found allocation holder
  instance=$(metadata instance-id) || return 1
  region=$(metadata placement/region) || return 1
  found=$(aws ec2 describe-addresses --region "$region" --filters "Name=tag:$TAG_KEY,Values=$name" \
    --query 'Addresses[0].[AllocationId,InstanceId]' --output text) || return 1
  read -r allocation holder <<<"$found"
  if [ -z "$allocation" ] || [ "$allocation" = None ]; then
    log "no Elastic IP is tagged $TAG_KEY=$name"
    return 1
  fi
  if [ "$holder" = "$instance" ]; then
    log "$allocation is already on $instance"
    return 0
  fi
  aws ec2 associate-address --region "$region" --allocation-id "$allocation" --instance-id "$instance" \
    --allow-reassociation --output text >/dev/null || return 1
  log "moved $allocation from $holder to $instance"
}

delay=1
for attempt in $(seq 1 "$attempts"); do
  if move_vip; then
    exit 0
  fi
  if [ "$attempt" -lt "$attempts" ]; then
    log "attempt $attempt of $attempts failed; retrying in $delay s"
    sleep "$delay"
    delay=$((delay * 2))
  fi
done
log "giving up after $attempts attempts: the VIP stays where it is"
exit 1
