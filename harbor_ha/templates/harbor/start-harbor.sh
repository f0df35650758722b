#!/bin/bash
# Starts Harbor (harbor.service, which configure-harbor.sh enabled) on a node that shares one database with
# others (the fleet), under that database's schema-migration lock: Harbor's core migrates the
# schema when it starts, and several cores of a new release migrating at once have corrupted databases
# (harbor-helm#371). This holds on a fresh deploy (every node boots at once), on an upgrade and on scale-out.
#
# Protocol, with no network path between nodes: SCHEMA_LOCK_PARAMETER (an SSM parameter per database and Harbor
# release), where it does not exist yet, is created without --overwrite, which succeeds for exactly one node, the
# winner. It starts Harbor, waits until its core reports healthy (the migration is over), then writes "done". While it waits it rewrites
# "migrating <instance> <time>" every poll: a heartbeat. The other nodes poll the parameter: on "done" they start
# Harbor; on "failed" they stop with what to do. A "migrating" whose heartbeat is older than the stale limit (its
# node died) is taken over by the one node that first creates "<parameter>.takeover-<parameter version>". A winner
# that finds its lock taken over stops its Harbor. Every wait is bounded and ends in one line naming the
# parameter and what to do. After a reboot harbor.service starts Harbor without the lock: by then this release's
# migration is done.
#
# It travels in the fleet's bucket, not in user-data (harbor_ha.harbor_boot.CARRIED_STEPS).
#
# Environment: HARBOR_VERSION, SCHEMA_LOCK_PARAMETER; optional HARBOR_HA_SCHEMA_LOCK_WAIT (seconds, default 1800), HARBOR_HA_SCHEMA_LOCK_STALE (300),
# HARBOR_HA_SCHEMA_LOCK_POLL (10), HARBOR_HA_IMDS_ENDPOINT, HARBOR_HA_HEALTH_CHECK.
set -euo pipefail
: "${HARBOR_VERSION:?is the Harbor release this node runs}"
: "${SCHEMA_LOCK_PARAMETER:?names the schema-migration lock of the database this node shares}"
lock=$SCHEMA_LOCK_PARAMETER
wait_s=${HARBOR_HA_SCHEMA_LOCK_WAIT:-1800}
stale_s=${HARBOR_HA_SCHEMA_LOCK_STALE:-300}
poll_s=${HARBOR_HA_SCHEMA_LOCK_POLL:-10}
imds=${HARBOR_HA_IMDS_ENDPOINT:-http://169.254.169.254}
check=${HARBOR_HA_HEALTH_CHECK:-/usr/local/libexec/harbor-ha/check-harbor-health}
token=$(curl -fsS --max-time 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" "$imds/latest/api/token")
me=$(curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/instance-id")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log() { echo "harbor-ha schema lock: $*" >&2; }
fail() { log "$*"; exit 1; }
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
# put NAME VALUE [--overwrite]; the CLI's message in $work/error when it fails.
put() { aws ssm put-parameter --name "$1" --type String --value "$2" "${@:3}" >/dev/null 2>"$work/error"; }
# "<state> <instance> <time> <parameter version>" of the lock.
read_lock() {
  aws ssm get-parameter --name "$lock" --query '[Parameter.Value,Parameter.Version]' --output text 2>"$work/error"
}

# The winner's part: Harbor started, its health waited for with a heartbeat, then "done".
migrate() {
  log "$me migrates the database schema to Harbor $HARBOR_VERSION ($lock)"
  systemctl restart --no-block harbor.service
  local deadline=$((SECONDS + wait_s)) state holder rest
  until "$check" https://127.0.0.1/api/v2.0/health; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      put "$lock" "failed $me $(now)" --overwrite || true
      fail "Harbor $HARBOR_VERSION's core on $me did not report healthy within ${wait_s}s of starting the schema" \
        "migration: read 'docker compose logs core' in /opt/harbor; $lock now says failed, which stops the other" \
        "nodes: once the database is sound (or restored from the upgrade's RDS snapshot), delete it" \
        "(aws ssm delete-parameter --name $lock) and replace the nodes"
    fi
    sleep "$poll_s"
    if read -r state holder rest < <(read_lock) && [ "$state $holder" != "migrating $me" ]; then
      systemctl stop harbor.service
      fail "$lock was taken over ($state $holder $rest) while $me migrated (no heartbeat within ${stale_s}s):" \
        "Harbor stopped here; replace this node"
    fi
    put "$lock" "migrating $me $(now)" --overwrite || log "heartbeat not written: $(<"$work/error")"
  done
  put "$lock" "done $me $(now)" --overwrite || fail "$lock not marked done: $(<"$work/error")"
  log "schema migrated to Harbor $HARBOR_VERSION: $lock says done"
}

deadline=$((SECONDS + wait_s))
state="" holder="" at=""
# Waiting nodes only read: PutParameter's throughput is a few calls a second per account.
while :; do
  if read -r state holder at version < <(read_lock); then
    case $state in
      done)
        log "$holder migrated the schema to Harbor $HARBOR_VERSION at $at: starting Harbor"
        exec systemctl restart harbor.service ;;
      failed)
        fail "$holder failed to migrate the schema to Harbor $HARBOR_VERSION at $at ($lock says failed): Harbor" \
          "not started here; read 'docker compose logs core' there, and once the database is sound delete the" \
          "parameter (aws ssm delete-parameter --name $lock) and replace this node" ;;
      migrating)
        age=$(($(date -u +%s) - $(date -u -d "$at" +%s)))
        if [ "$age" -gt "$stale_s" ] && put "$lock.takeover-$version" "$me $(now)"; then
          log "taking $lock over from $holder: no heartbeat for ${age}s"
          put "$lock" "migrating $me $(now)" --overwrite || fail "$lock not taken over: $(<"$work/error")"
          migrate
          exit 0
        fi ;;
      *)
        fail "$lock holds '$state $holder $at', not a harbor-ha lock: delete it (aws ssm delete-parameter" \
          "--name $lock) and replace this node" ;;
    esac
  elif grep -q ParameterNotFound "$work/error" && put "$lock" "migrating $me $(now)"; then
    migrate
    exit 0
  fi
  # Otherwise another node created the lock first, or AWS refused (the role may still be propagating): retried.
  if [ "$SECONDS" -ge "$deadline" ]; then
    [ -n "$state" ] || fail "$lock could not be read or created within ${wait_s}s: $(<"$work/error")"
    fail "waited ${wait_s}s for $holder to migrate the schema to Harbor $HARBOR_VERSION ($lock: $state, heartbeat" \
      "$at); Harbor not started here: once $lock says done run 'systemctl restart harbor.service' (or replace this" \
      "node); a lock without heartbeat for ${stale_s}s is taken over by a waiting node"
  fi
  sleep "$poll_s"
done
