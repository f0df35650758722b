#!/bin/bash
# vip-notify NAME [--prepare | --check]: keepalived's notify program. Moves the VIP - the Elastic IP tagged
# harbor-ha:vip=NAME - to this instance, so that clients follow the VRRP master.
#
#   vip-notify NAME            notify_master: move the VIP here. With the allocation id that --prepare
#                              remembered, that is one AWS call (AssociateAddress), else a lookup first.
#   vip-notify NAME --prepare  notify_backup: look the VIP up and remember its allocation id, so that a
#                              BACKUP becoming MASTER makes one AWS call instead of two (each aws CLI run is
#                              0.7-1 s on a small instance; the failover drill measures the whole move).
#   vip-notify NAME --check    notify_master_rx_lower_pri: after a split brain heals, the master that stays
#                              takes the VIP back unless it already holds it (the other one moved it).
#
# The address is found by its tag rather than by an allocation id written into user-data, so the instances
# do not depend on the Elastic IP (whose initial association depends on an instance). A remembered id that
# AWS no longer knows is forgotten and looked up again. Every AWS call is retried with exponential backoff;
# progress goes to stdout and syslog.
# (No dollar-brace expansions: this text travels inside Terraform strings, where they would be interpolated.)
set -euo pipefail

readonly TAG_KEY="harbor-ha:vip"
mode=""
if [ $# -eq 2 ]; then mode=$2; fi
if [ $# -lt 1 ] || [ $# -gt 2 ] || ! [[ $mode =~ ^(|--prepare|--check)$ ]]; then
  echo "usage: vip-notify NAME [--prepare | --check]" >&2
  exit 2
fi
name=$1
# The instance metadata service (IMDSv2). Overridable only so that tests can stand in for it on loopback.
imds=$(printenv HARBOR_HA_IMDS_ENDPOINT || echo http://169.254.169.254)
attempts=$(printenv HARBOR_HA_NOTIFY_ATTEMPTS || echo 6)
# Where --prepare leaves the allocation id: a tmpfs, so a reboot forgets it. Overridable for tests, as above.
remembered="$(printenv HARBOR_HA_RUN_DIR || echo /run/harbor-ha)/vip-$name.allocation"

log() {
  echo "vip-notify: $*"
  logger -t harbor-vip-notify -- "$*" 2>/dev/null || true
}

# One IMDSv2 session token per attempt (run sets it), then one request per value.
metadata() {
  curl -fsS --max-time 2 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/$1"
}

# Sets allocation and holder (the instance the address is on, or None) from the VIP's tag.
look_up() {
  local found
  found=$(aws ec2 describe-addresses --region "$region" --filters "Name=tag:$TAG_KEY,Values=$name" \
    --query 'Addresses[0].[AllocationId,InstanceId]' --output text) || return 1
  read -r allocation holder <<<"$found"
  if [ -z "$allocation" ] || [ "$allocation" = None ]; then
    log "no Elastic IP is tagged $TAG_KEY=$name"
    return 1
  fi
}

associate() {
  aws ec2 associate-address --region "$region" --allocation-id "$allocation" --instance-id "$instance" \
    --allow-reassociation --output text >/dev/null
}

run() {
  local token instance region allocation holder
  token=$(curl -fsS --max-time 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$imds/latest/api/token") \
    || return 1
  region=$(metadata placement/region) || return 1
  if [ "$mode" = --prepare ]; then
    look_up || return 1
    mkdir -p "$(dirname "$remembered")"
    echo "$allocation" >"$remembered"
    log "remembered $allocation for $TAG_KEY=$name"
    return 0
  fi
  instance=$(metadata instance-id) || return 1
  if [ -z "$mode" ] && allocation=$(cat "$remembered" 2>/dev/null) && [ -n "$allocation" ]; then
    if associate; then
      log "moved $allocation to $instance"
      return 0
    fi
    log "the remembered $allocation did not move; looking the VIP up again"
    rm -f "$remembered"
  fi
  look_up || return 1
  if [ "$holder" = "$instance" ]; then
    log "$allocation is already on $instance"
    return 0
  fi
  associate || return 1
  log "moved $allocation from $holder to $instance"
}

delay=1
for attempt in $(seq 1 "$attempts"); do
  if run; then
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
