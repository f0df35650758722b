"""The cdktf app: the stacks chosen by the settings, in one App."""

from __future__ import annotations

import os
import sys

from harbor_ha.settings import HarborHaSettings, SettingsError, load_settings


def build_app(settings: HarborHaSettings, outdir: str | None = None, local_endpoint: str | None = None):
    """A cdktf ``App`` holding ``settings.stacks``."""
    # Imported here so that a settings mistake is reported before the jsii runtime starts.
    from harbor_ha.aws import App
    from harbor_ha.stacks import stack_class

    app = App(outdir=outdir) if outdir else App()
    for name in settings.stacks:
        stack_class(name)(app, name, settings=settings, local_endpoint=local_endpoint)
    return app


def main() -> int:
    """Entry point of ``main.py`` (what ``cdktf synth/deploy`` runs): user mistakes end in a message,
    not a traceback."""
    from harbor_ha.local.emulator import EmulatorError
    from harbor_ha.target import LocalTargetNotRunning

    try:
        settings = load_settings()
        build_app(settings, local_endpoint=_running_emulator() if settings.target == "local" else None).synth()
    except (SettingsError, LocalTargetNotRunning, EmulatorError) as error:
        print(f"harbor-ha: {error}", file=sys.stderr)
        return 2
    return 0


def _running_emulator() -> str:
    """The local emulator's URL for ``cdktf synth/deploy``: ``$HARBOR_HA_LOCAL_ENDPOINT``, else the
    emulator of this project, started if it is not running."""
    from harbor_ha.local import emulator
    from harbor_ha.target import LOCAL_ENDPOINT_ENV

    if os.environ.get(LOCAL_ENDPOINT_ENV):
        return os.environ[LOCAL_ENDPOINT_ENV]
    running, started = emulator.start()
    print(f"harbor-ha: local AWS emulator {'started' if started else 'running'} at {running.endpoint} "
          f"(pid {running.pid})", file=sys.stderr)
    return running.endpoint
