#!/bin/bash
# health-report VERSION: tag this instance harbor-ha:health="<healthy|unhealthy> VERSION <UTC time>", judged
# by the body of the local Harbor's /api/v2.0/health (check-harbor-health). Run every 30 s by
# harbor-health-report.timer; harbor-ha up reads the tag to roll nodes one at a time, from outside the VPC.
# The instance role may set this one tag on this one instance (ec2:SourceInstanceARN).
set -uo pipefail
if [ $# -ne 1 ]; then
  echo "usage: health-report VERSION" >&2
  exit 2
fi
imds=$(printenv HARBOR_HA_IMDS_ENDPOINT || echo http://169.254.169.254)
check=$(printenv HARBOR_HA_HEALTH_CHECK || echo /usr/local/libexec/harbor-ha/check-harbor-health)
token=$(curl -fsS --max-time 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$imds/latest/api/token") || exit 1
meta() { curl -fsS --max-time 2 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/$1"; }
instance=$(meta instance-id) || exit 1
region=$(meta placement/region) || exit 1
status=unhealthy
if "$check" https://127.0.0.1/api/v2.0/health; then
  status=healthy
fi
exec aws ec2 create-tags --region "$region" --resources "$instance" \
  --tags "Key=harbor-ha:health,Value=$status $1 $(date -u +%Y-%m-%dT%H:%M:%SZ)"
