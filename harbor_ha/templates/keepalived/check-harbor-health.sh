#!/bin/sh
# check-harbor-health URL: exit 0 only when the Harbor behind URL reports itself healthy.
#
# GET /api/v2.0/health answers HTTP 200 also when a component is down, so the JSON body decides, not the
# status code. Harbor's body is {"status":"<overall>","components":[{"name":...,"status":...},...]}: the
# components carry "status" keys of their own, so only the overall status at the start of the body counts.
# TLS is not verified (--insecure): the certificate names Harbor's public hostname, not the address
# probed here, and the answer is only read for its health, never trusted with credentials.
# (No dollar-brace expansions: this text travels inside Terraform strings, where they would be interpolated.)
if [ $# -ne 1 ]; then
  echo "usage: check-harbor-health URL" >&2
  exit 2
fi
body=$(curl --fail --silent --show-error --insecure --max-time 3 "$1") || exit 1
printf '%s' "$body" | tr -d ' \t\r\n' | grep -q '^{"status":"healthy"'
