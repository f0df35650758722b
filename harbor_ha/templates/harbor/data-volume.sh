#!/bin/bash
# Mounts the EBS data volume DATA_VOLUME_ID at /data (Harbor's data_volume): waits for Terraform to attach
# it, makes a file system only on a blank volume (a volume that already holds a registry is never
# formatted), and mounts it by UUID at every boot.
set -euo pipefail
: "${DATA_VOLUME_ID:?is the EBS volume that holds Harbor data}"
mount_point=${HARBOR_DATA_DIR:-/data}
# Nitro instances expose EBS volumes as NVMe devices whose serial is the volume id without the dash.
device="/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${DATA_VOLUME_ID/-/}"
for _ in $(seq 1 120); do
  [ -e "$device" ] && break
  sleep 5
done
[ -e "$device" ] || { echo "harbor-ha: volume $DATA_VOLUME_ID was not attached within 10 minutes" >&2; exit 1; }
if ! blkid "$device" >/dev/null; then
  mkfs.xfs -L harbor-data "$device"
fi
uuid=$(blkid -s UUID -o value "$device")
mkdir -p "$mount_point"
grep -q "UUID=$uuid" /etc/fstab || echo "UUID=$uuid $mount_point xfs defaults,nofail 0 2" >>/etc/fstab
mountpoint -q "$mount_point" || mount "$mount_point"
