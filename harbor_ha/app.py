"""The cdktf app: the stacks chosen by the settings, in one App."""

from __future__ import annotations

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
    from harbor_ha.local import emulator

    try:
        settings = load_settings()
        endpoint = None
        if settings.target == "local":
            endpoint = emulator.endpoint(report=lambda line: print(f"harbor-ha: {line}", file=sys.stderr))
        build_app(settings, local_endpoint=endpoint).synth()
    except (SettingsError, emulator.EmulatorError) as error:
        print(f"harbor-ha: {error}", file=sys.stderr)
        return 2
    return 0

