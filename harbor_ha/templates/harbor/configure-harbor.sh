#!/bin/bash
# Writes /opt/harbor/harbor.yml from the template cloud-init placed (no secrets in it: placeholders), with
# passwords read from Secrets Manager now, runs Harbor's prepare, puts the deployment's shared secrets into
# the generated env files, enables harbor.service so Harbor comes back after a reboot, and starts Harbor: at once
# on a node with its own database, under the schema-migration lock (start-harbor.sh, the next step) on a node
# that shares one (SCHEMA_LOCK_PARAMETER set).
#
# prepare makes a new core secret, jobservice secret and CSRF key on every run, and harbor.yml has no key
# for them (Harbor 2.15), so they are rewritten in the env files prepare generates (common/config/*/env);
# this is also why prepare and docker compose run here instead of install.sh, which does both in one go.
# secretkey and the token-signing pair need no rewriting: prepare keeps files that already exist.
#
# Environment: HARBOR_HOSTNAME (empty: the node's private address); HARBOR_TLS_NAMES (more names and addresses,
# comma-separated, that a self-signed certificate carries); HARBOR_YML_<NAME> fills @@NAME@@;
# ADMIN_SECRET_ARN (plain string); optional DB_SECRET_ARN (RDS master secret,
# JSON; empty: Harbor's own database with a password made here once), REDIS_SECRET_ARN (plain string),
# TLS_SECRET_ARN (JSON certificate + private_key; empty: the shared self-signed pair, or one made here).
set -euo pipefail
imds=${HARBOR_HA_IMDS_ENDPOINT:-http://169.254.169.254}
private_ipv4() {
  local token
  token=$(curl -fsS --max-time 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" "$imds/latest/api/token")
  curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/local-ipv4"
}
private_ip=$(private_ipv4)
HARBOR_HOSTNAME=${HARBOR_HOSTNAME:-$private_ip}
: "${ADMIN_SECRET_ARN:?is the secret holding the initial admin password}"
state_dir=${HARBOR_HA_STATE_DIR:-/etc/harbor-ha}
install_dir=${HARBOR_INSTALL_DIR:-/opt/harbor}
data_dir=${HARBOR_DATA_DIR:-/data}
umask 077

# Retries: the role's policies may still be propagating when a new node boots.
# A secret is read in the region its ARN names: a certificate of the user's may live in another region than
# the node (master-master's second Harbor).
secret() {
  local attempt region=${AWS_DEFAULT_REGION:-}
  [[ $1 != arn:*:secretsmanager:* ]] || region=$(cut -d: -f4 <<<"$1")
  for attempt in $(seq 1 10); do
    aws secretsmanager get-secret-value --region "$region" --secret-id "$1" --query SecretString --output text \
      && return
    sleep $((attempt * 3))
  done
  return 1
}
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]], end="")' "$1"; }

# TLS: a certificate from Secrets Manager, else the deployment's shared self-signed one, else a new one.
if [ -n "${TLS_SECRET_ARN:-}" ]; then
  mkdir -p "$state_dir/tls"
  tls=$(secret "$TLS_SECRET_ARN")
  json_field certificate <<<"$tls" >"$state_dir/tls/server.crt"
  json_field private_key <<<"$tls" >"$state_dir/tls/server.key"
elif [ ! -s "$state_dir/tls/server.crt" ]; then
  mkdir -p "$state_dir/tls"
  # The names clients use, then the private address replicating Harbors reach and 127.0.0.1 for the node's
  # own replication tools; they trust exactly this certificate (harbor_ha/constructs/replication.py).
  san=""
  IFS=, read -ra names <<<"$HARBOR_HOSTNAME,${HARBOR_TLS_NAMES:-},$private_ip,127.0.0.1"
  for name in "${names[@]}"; do
    [ -n "$name" ] || continue
    if [[ $name =~ ^[0-9.]+$ ]]; then entry="IP:$name"; else entry="DNS:$name"; fi
    [[ ",$san," == *",$entry,"* ]] || san="${san:+$san,}$entry"
  done
  # A certificate's common name holds 64 characters; clients match the subjectAltName anyway.
  subject="/CN=$HARBOR_HOSTNAME"
  [ "${#HARBOR_HOSTNAME}" -le 64 ] || subject="/O=harbor-ha"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$state_dir/tls/server.key" -out "$state_dir/tls/server.crt" \
    -days 825 -subj "$subject" -addext "subjectAltName=$san" 2>/dev/null
fi

declare -A values=([HOSTNAME]="$HARBOR_HOSTNAME")
values[ADMIN_PASSWORD]=$(secret "$ADMIN_SECRET_ARN")
if [ -n "${DB_SECRET_ARN:-}" ]; then
  values[DB_PASSWORD]=$(secret "$DB_SECRET_ARN" | json_field password)
else
  # Harbor's own PostgreSQL keeps the password it was initialised with: make it once, keep it with the data.
  password_file="$data_dir/harbor-ha/database-password"
  if [ ! -s "$password_file" ]; then
    mkdir -p "$(dirname "$password_file")"
    openssl rand -hex 24 >"$password_file"
  fi
  values[DB_PASSWORD]=$(<"$password_file")
fi
if [ -n "${REDIS_SECRET_ARN:-}" ]; then
  values[REDIS_PASSWORD]=$(secret "$REDIS_SECRET_ARN")
fi
# Values Terraform made (endpoints, bucket ...) travel as HARBOR_YML_<placeholder> in the environment.
while read -r name; do
  values[${name#HARBOR_YML_}]=${!name}
done < <(compgen -v HARBOR_YML_)

# Placeholders stand in single-quoted YAML scalars: a quote inside a value is doubled. One pass from left to
# right, so a value that happens to hold @@NAME@@ stays as it is.
rest=$(<"$state_dir/harbor.yml.tmpl")
config=""
while [[ $rest =~ @@([A-Z0-9_]+)@@ ]]; do
  key=${BASH_REMATCH[1]}
  if [ -z "${values[$key]+set}" ]; then
    echo "harbor-ha: harbor.yml still has the placeholder @@$key@@" >&2
    exit 1
  fi
  config+=${rest%%"@@$key@@"*}${values[$key]//\'/\'\'}
  rest=${rest#*"@@$key@@"}
done
printf '%s\n' "$config$rest" >"$install_dir/harbor.yml"

cd "$install_dir"
./prepare --with-trivy
if [ -r "$state_dir/shared-secrets.env" ]; then
  # shellcheck source=/dev/null
  . "$state_dir/shared-secrets.env"
  for component in core jobservice registryctl; do
    sed -i -e "s/^CORE_SECRET=.*/CORE_SECRET=$CORE_SECRET/" \
      -e "s/^JOBSERVICE_SECRET=.*/JOBSERVICE_SECRET=$JOBSERVICE_SECRET/" "common/config/$component/env"
  done
  sed -i "s/^CSRF_KEY=.*/CSRF_KEY=$CSRF_KEY/" common/config/core/env
fi
if [ -n "${values[REDIS_PASSWORD]:-}" ]; then
  # prepare writes the Redis password into the registry's config.yml as a plain YAML scalar, which a token
  # starting with !, & or # (ElastiCache allows them) would break: make it a single-quoted scalar.
  REDIS_PASSWORD=${values[REDIS_PASSWORD]} python3 - common/config/registry/config.yml <<'PY'
import os, sys
path, password = sys.argv[1], os.environ["REDIS_PASSWORD"]
with open(path) as f:
    lines = f.readlines()
found = [i for i, line in enumerate(lines) if line == f"  password: {password}\n"]
if len(found) != 1:
    sys.exit(f"harbor-ha: {path} does not hold the Redis password once as prepare writes it")
lines[found[0]] = "  password: '" + password.replace("'", "''") + "'\n"
with open(path, "w") as f:
    f.writelines(lines)
PY
fi
systemctl daemon-reload
systemctl enable harbor.service
[ -n "${SCHEMA_LOCK_PARAMETER:-}" ] || systemctl restart harbor.service
