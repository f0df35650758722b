#!/bin/bash
# Builds the CA bundle that the replication configurator verifies Harbors with: this node's own certificate
# (the configurator calls its Harbor at https://127.0.0.1) and the certificate of each peer, which the peer
# put into the replication carrier bucket at boot. A peer may still be booting: each is waited for, up to
# HARBOR_HA_CERT_ATTEMPTS tries HARBOR_HA_CERT_WAIT seconds apart (default 120 x 15 s = 30 minutes).
#
# Usage: gather-peer-certificates.sh REGION BUCKET BUNDLE PEER...
#   fetches s3://BUCKET/certificates/PEER.pem (in REGION) for each PEER and writes BUNDLE.
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: $0 REGION BUCKET BUNDLE PEER..." >&2
  exit 2
fi
region=$1 bucket=$2 bundle=$3
shift 3
own=${HARBOR_HA_STATE_DIR:-/etc/harbor-ha}/tls/server.crt
attempts=${HARBOR_HA_CERT_ATTEMPTS:-120}
wait_s=${HARBOR_HA_CERT_WAIT:-15}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat "$own" >"$work/bundle.pem"
for peer in "$@"; do
  attempt=1
  until aws s3 cp --only-show-errors --region "$region" "s3://$bucket/certificates/$peer.pem" "$work/$peer.pem" \
      2>"$work/error"; do
    if [ "$attempt" -ge "$attempts" ]; then
      echo "no certificate from peer $peer in s3://$bucket/certificates/ after $attempts attempts:" \
        "$(cat "$work/error"); check that its boot finished (cloud-init status on it), then run this again" >&2
      exit 1
    fi
    echo "waiting for peer $peer's certificate (attempt $attempt of $attempts)"
    attempt=$((attempt + 1))
    sleep "$wait_s"
  done
  if ! grep -q "BEGIN CERTIFICATE" "$work/$peer.pem"; then
    echo "s3://$bucket/certificates/$peer.pem is not a PEM certificate" >&2
    exit 1
  fi
  cat "$work/$peer.pem" >>"$work/bundle.pem"
done
install -m 0644 "$work/bundle.pem" "$bundle"
echo "$bundle: this node's certificate and $# peer certificate(s)"
