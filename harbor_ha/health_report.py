"""The health report of a Harbor node (see ``harbor_ha.node_reports``): health-report on a 30 s timer tags
the node's own instance with its Harbor's health and release, which ``harbor-ha up`` waits for when it rolls
the nodes one at a time."""

from __future__ import annotations

from harbor_ha.cloud_init import CloudConfig, WriteFile
from harbor_ha.harbor_boot import SCRIPT_DIR, boot_script
from harbor_ha.keepalived import node_program

_SERVICE = """[Unit]
Description=harbor-ha health report: tag this instance with its Harbor's health
After=harbor.service

[Service]
Type=oneshot
ExecStart={script_dir}/health-report.sh {version}
"""
_TIMER = """[Unit]
Description=harbor-ha health report every 30 seconds

[Timer]
OnBootSec=60s
OnUnitActiveSec=30s

[Install]
WantedBy=timers.target
"""


def health_report_part(harbor_version: str) -> CloudConfig:
    """health-report, the body check it uses, and its timer (started once Harbor's boot steps ran)."""
    return CloudConfig(
        files=(boot_script("health-report.sh"),
               node_program("check-harbor-health", SCRIPT_DIR),
               WriteFile(path="/etc/systemd/system/harbor-health-report.service",
                         content=_SERVICE.format(script_dir=SCRIPT_DIR, version=harbor_version)),
               WriteFile(path="/etc/systemd/system/harbor-health-report.timer", content=_TIMER)),
        commands=("systemctl daemon-reload", "systemctl enable --now harbor-health-report.timer"))
