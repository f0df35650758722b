#!/bin/bash
# Gives every Harbor node of one deployment the same secrets. Harbor's prepare makes new ones on each node:
# the core and jobservice secrets (16 chars) and the CSRF key (32) on every run, /data/secret/keys/secretkey
# (16) and the token-signing pair /data/secret/core/private_key.pem + /data/secret/registry/root.crt when
# missing. Nodes sharing one database and Redis must agree on all of them, or logins and replication fail
# (goharbor#20908). The self-signed TLS certificate is shared too, so clients see one certificate.
#
# Protocol: read the deployment's one Secrets Manager secret; if it does not exist yet, make the material
# and create the secret. Two nodes racing both try; create-secret fails with ResourceExistsException for the
# loser. Every node then writes the files from the stored value, so all end byte-identical.
#
# Environment: SHARED_SECRET_NAME, SHARED_SECRET_KMS_KEY, HARBOR_HOSTNAME; optional HARBOR_SECRET_DIR
# (default /data/secret), HARBOR_HA_STATE_DIR (default /etc/harbor-ha: shared-secrets.env, tls/),
# HARBOR_HA_RETRIES (default 10) for AWS errors.
set -euo pipefail
: "${SHARED_SECRET_NAME:?names the shared-secrets secret of the deployment}"
: "${SHARED_SECRET_KMS_KEY:?is the KMS key that encrypts it}"
: "${HARBOR_HOSTNAME:?is the name or address clients use}"
secret_dir=${HARBOR_SECRET_DIR:-/data/secret}
state_dir=${HARBOR_HA_STATE_DIR:-/etc/harbor-ha}
retries=${HARBOR_HA_RETRIES:-10}
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log() { echo "harbor-ha shared secrets: $*" >&2; }

# Letters and digits, as Harbor's own generate_random_string.
random_string() {
  local out=""
  while [ "${#out}" -lt "$1" ]; do
    out+=$(openssl rand -base64 96 | tr -dc 'A-Za-z0-9')
  done
  printf '%s' "${out:0:$1}"
}

subject_alt_name() {
  if [[ $HARBOR_HOSTNAME =~ ^[0-9.]+$ ]]; then echo "IP:$HARBOR_HOSTNAME"; else echo "DNS:$HARBOR_HOSTNAME"; fi
}

make_material() {
  # The token pair as prepare makes it (utils/cert.py create_root_cert): RSA 4096, PKCS#1, 10 years.
  openssl genrsa -traditional -out "$work/token.key" 4096 2>/dev/null
  openssl req -new -x509 -key "$work/token.key" -out "$work/token.crt" -days 3650 -subj "/CN=harbor-token-issuer"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/tls.key" -out "$work/tls.crt" -days 825 \
    -subj "/CN=$HARBOR_HOSTNAME" -addext "subjectAltName=$(subject_alt_name)" 2>/dev/null
  CORE_SECRET=$(random_string 16) JOBSERVICE_SECRET=$(random_string 16) CSRF_KEY=$(random_string 32) \
    SECRET_KEY=$(random_string 16) python3 - "$work" >"$work/material.json" <<'PY'
import json, os, sys
work = sys.argv[1]
def read(name):
    with open(os.path.join(work, name)) as f:
        return f.read()
print(json.dumps({
    "core_secret": os.environ["CORE_SECRET"], "jobservice_secret": os.environ["JOBSERVICE_SECRET"],
    "csrf_key": os.environ["CSRF_KEY"], "secret_key": os.environ["SECRET_KEY"],
    "token_private_key": read("token.key"), "token_certificate": read("token.crt"),
    "tls_private_key": read("tls.key"), "tls_certificate": read("tls.crt"),
}, sort_keys=True))
PY
}

# Prints the stored material; fails with the CLI's message in $work/error.
read_material() {
  aws secretsmanager get-secret-value --secret-id "$SHARED_SECRET_NAME" --query SecretString --output text \
    2>"$work/error"
}

# Other errors are retried (a new node's role may still be propagating), never taken for "no material".
found=false
for attempt in $(seq 1 "$retries"); do
  if read_material >"$work/stored.json"; then found=true; break; fi
  grep -q ResourceNotFoundException "$work/error" && break
  [ "$attempt" -lt "$retries" ] || { cat "$work/error" >&2; exit 1; }
  sleep $((attempt * 3))
done
if [ "$found" = false ]; then
  log "no material yet: making it"
  make_material
  if aws secretsmanager create-secret --name "$SHARED_SECRET_NAME" --kms-key-id "$SHARED_SECRET_KMS_KEY" \
      --description "harbor-ha: secrets every Harbor node of this deployment shares" \
      --secret-string "file://$work/material.json" >/dev/null 2>"$work/error"; then
    log "created $SHARED_SECRET_NAME"
  elif grep -q ResourceExistsException "$work/error"; then
    log "another node created $SHARED_SECRET_NAME first: using its material"
  else
    cat "$work/error" >&2
    exit 1
  fi
  # A secret just created elsewhere may take a moment to become readable.
  for attempt in $(seq 1 "$retries"); do
    read_material >"$work/stored.json" && break
    [ "$attempt" -lt "$retries" ] || { cat "$work/error" >&2; exit 1; }
    sleep $((attempt * 3))
  done
fi

mkdir -p "$secret_dir/keys" "$secret_dir/core" "$secret_dir/registry" "$state_dir/tls"
python3 - "$work/stored.json" "$secret_dir" "$state_dir" <<'PY'
import json, os, re, sys
stored, secret_dir, state_dir = sys.argv[1:]
with open(stored) as f:
    material = json.load(f)
for key, length in (("core_secret", 16), ("jobservice_secret", 16), ("csrf_key", 32), ("secret_key", 16)):
    if not re.fullmatch(r"[A-Za-z0-9]{%d}" % length, material[key]):
        sys.exit(f"shared secret {key} is not {length} letters and digits")
files = {
    os.path.join(secret_dir, "keys", "secretkey"): material["secret_key"],
    os.path.join(secret_dir, "core", "private_key.pem"): material["token_private_key"],
    os.path.join(secret_dir, "registry", "root.crt"): material["token_certificate"],
    os.path.join(state_dir, "tls", "server.key"): material["tls_private_key"],
    os.path.join(state_dir, "tls", "server.crt"): material["tls_certificate"],
    os.path.join(state_dir, "shared-secrets.env"): "".join(
        f"{name}={material[key]}\n" for name, key in (
            ("CORE_SECRET", "core_secret"), ("JOBSERVICE_SECRET", "jobservice_secret"), ("CSRF_KEY", "csrf_key"))),
}
for path, content in files.items():
    with open(path, "w") as f:
        f.write(content)
PY
log "material in place"
