"""The cdktf app: the stacks chosen by the settings, in one App."""

from __future__ import annotations

import sys

from harbor_ha.aws import App
from harbor_ha.provider import LocalTargetNotRunning
from harbor_ha.settings import HarborHaSettings, SettingsError, load_settings
from harbor_ha.stacks import stack_class


def build_app(settings: HarborHaSettings, outdir: str | None = None, local_endpoint: str | None = None) -> App:
    app = App(outdir=outdir) if outdir else App()
    for name in settings.stacks:
        stack_class(name)(app, name, settings=settings, local_endpoint=local_endpoint)
    return app


def main() -> int:
    """Entry point of ``main.py`` (what ``cdktf synth/deploy`` runs): user mistakes end in a message,
    not a traceback."""
    try:
        settings = load_settings()
        build_app(settings).synth()
    except (SettingsError, LocalTargetNotRunning) as error:
        print(f"harbor-ha: {error}", file=sys.stderr)
        return 2
    return 0
