#!/bin/bash
# vip-notify NAME [--prepare | --check]: keepalived's notify program. Moves the VIP - the Elastic IP tagged
# harbor-ha:vip=NAME - to this instance, so that clients follow the VRRP master.
#
#   vip-notify NAME            notify_master: move the VIP here. With the allocation id that --prepare
#                              remembered, that is one AWS call (AssociateAddress), else a lookup first.
#   vip-notify NAME --prepare  notify_backup: look the VIP up and remember its allocation id, so that a
#                              BACKUP becoming MASTER makes one AWS call instead of two (the failover drill
#                              measures the whole move).
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

# AWS credentials the way the aws CLI finds them on an instance: the environment, else the instance role's
# from the metadata service. Sets key, secret and session.
credentials() {
  if key=$(printenv AWS_ACCESS_KEY_ID) && secret=$(printenv AWS_SECRET_ACCESS_KEY); then
    session=$(printenv AWS_SESSION_TOKEN || true)
    return 0
  fi
  local role
  role=$(metadata iam/security-credentials/) || return 1
  { read -r key; read -r secret; read -r session; } < <(metadata "iam/security-credentials/$role" | python3 -c '
import json, sys
document = json.load(sys.stdin)
print(document["AccessKeyId"], document["SecretAccessKey"], document["Token"], sep="\n")') || return 1
  [ -n "$key" ] && [ -n "$secret" ]
}

# ec2 ACTION NAME=VALUE...: one EC2 API call (query protocol) signed by curl (SigV4); prints EC2's answer.
# Not the aws CLI: its start-up alone takes 0.7-1 s, and a graceful stop must move the VIP within 1.5 s. The
# credentials reach curl on its standard input, never on a command line.
ec2() {
  local action=$1 key secret session parameter answer
  shift
  credentials || return 1
  if ! answer=$({
    echo "user = \"$key:$secret\""
    if [ -n "$session" ]; then echo "header = \"X-Amz-Security-Token: $session\""; fi
    for parameter in "Action=$action" Version=2016-11-15 "$@"; do echo "data-urlencode = \"$parameter\""; done
  } | curl -sS --fail-with-body --max-time 5 --config - --aws-sigv4 "aws:amz:$region:ec2" \
    "$(printenv AWS_ENDPOINT_URL || echo "https://ec2.$region.amazonaws.com")/"); then
    log "$action failed: $(grep -o '<Code>[^<]*' <<<"$answer" | head -n 1 || true)"
    return 1
  fi
  echo "$answer"
}

# The text of the first <ELEMENT> in EC2's answer on standard input (empty if there is none).
element() {
  grep -o "<$1>[^<]*" | head -n 1 | cut -d '>' -f 2
}

# Sets allocation and holder (the instance the address is on, or None) from the VIP's tag.
look_up() {
  local found
  found=$(ec2 DescribeAddresses "Filter.1.Name=tag:$TAG_KEY" "Filter.1.Value.1=$name") || return 1
  allocation=$(element allocationId <<<"$found")
  holder=$(element instanceId <<<"$found")
  [ -n "$holder" ] || holder=None
  if [ -z "$allocation" ]; then
    log "no Elastic IP is tagged $TAG_KEY=$name"
    return 1
  fi
}

associate() {
  ec2 AssociateAddress "AllocationId=$allocation" "InstanceId=$instance" AllowReassociation=true >/dev/null
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
