#!/bin/bash
# Installs Docker, the docker compose plugin and the pinned Harbor online installer into /opt/harbor.
# Amazon Linux 2023 packages Docker but not the compose plugin: it comes from Docker's GitHub release and is
# checked against the SHA-256 published beside it. The Harbor installer is checked against its detached
# signature with Harbor's release key, fetched by its key id, so a tampered download never runs.
# Environment (see run-step.sh): HARBOR_VERSION, COMPOSE_VERSION, HARBOR_SIGNING_KEY (key id). Runs again
# harmlessly.
set -euo pipefail
: "${HARBOR_VERSION:?is the Harbor release to install}"
: "${COMPOSE_VERSION:?is the docker compose release to install}"
: "${HARBOR_SIGNING_KEY:?is the id of the key that signs Harbor releases}"
install_dir=${HARBOR_INSTALL_DIR:-/opt/harbor}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

download() { curl --fail --silent --show-error --location --retry 5 --retry-all-errors --output "$2" "$1"; }

systemctl enable --now docker

plugin=/usr/local/lib/docker/cli-plugins/docker-compose
if [ ! -x "$plugin" ]; then
  base="https://github.com/docker/compose/releases/download/v$COMPOSE_VERSION"
  download "$base/docker-compose-linux-x86_64" "$work/docker-compose-linux-x86_64"
  download "$base/docker-compose-linux-x86_64.sha256" "$work/compose.sha256"
  (cd "$work" && sha256sum --check --strict compose.sha256)
  install -D -m 0755 "$work/docker-compose-linux-x86_64" "$plugin"
fi
docker compose version

if [ ! -x "$install_dir/prepare" ]; then
  installer="harbor-online-installer-v$HARBOR_VERSION.tgz"
  base="https://github.com/goharbor/harbor/releases/download/v$HARBOR_VERSION"
  download "$base/$installer" "$work/$installer"
  download "$base/$installer.asc" "$work/$installer.asc"
  download "https://keyserver.ubuntu.com/pks/lookup?op=get&search=0x$HARBOR_SIGNING_KEY" "$work/harbor.key"
  export GNUPGHOME="$work/gnupg"
  mkdir -m 0700 "$GNUPGHOME"
  gpg --batch --quiet --import "$work/harbor.key"
  # VALIDSIG names the signing key's fingerprint, which ends with its key id.
  gpg --batch --status-fd 1 --verify "$work/$installer.asc" "$work/$installer" 2>/dev/null \
    | grep -Eq "^\[GNUPG:\] VALIDSIG .*$HARBOR_SIGNING_KEY( |$)" \
    || { echo "harbor-ha: $installer is not signed by Harbor's release key $HARBOR_SIGNING_KEY" >&2; exit 1; }
  mkdir -p "$install_dir"
  tar -xzf "$work/$installer" -C "$install_dir" --strip-components=1
fi
