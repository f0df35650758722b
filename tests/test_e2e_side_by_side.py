"""End to end on the local AWS target: the four stacks of one deployment (default settings, name ``harbor``)
deployed on one emulator at once, then destroyed one by one. No stack takes a name of another (they used to
collide on the database, cache subnet group and KMS aliases), and after each ``down`` every remaining stack
still verifies and plans empty, and the target holds nothing of the destroyed one but what AWS keeps."""

from __future__ import annotations

import pytest

from harbor_ha.stack_run import StackRun
from harbor_ha.inventory import stack_inventory
from harbor_ha.settings import STACK_NAMES
from e2e_helpers import emulated_project, outputs, run, start, use_project, wait_for_line

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with emulated_project(tmp_path_factory.mktemp("side-by-side")) as project:
        yield project


def test_four_stacks_live_side_by_side_and_go_one_by_one(project, monkeypatch):
    root, endpoint = project
    use_project(monkeypatch, project)
    ups = {}
    for stack in STACK_NAMES:
        ups[stack] = start(root, endpoint, "up", stack)
        # Synth and init one at a time (terraform's plugin cache is not safe for concurrent inits); applies overlap.
        wait_for_line(root / f"up-{stack}.out", f"apply {stack}: planned ")
    for stack, up in ups.items():
        up.wait(timeout=1800)
        out, err = outputs(root, "up", stack)
        assert up.returncode == 0, f"{stack}:\n{out[-4000:]}{err}"

    remaining = list(STACK_NAMES)
    while remaining:
        gone = remaining.pop(0)
        code, out, err = run(root, endpoint, "down", gone)
        assert code == 0, f"{gone}:\n{out[-4000:]}{err}"
        left = stack_inventory(StackRun(gone, project_dir=root, stream=False)).all()
        assert [f.describe() for f in left if not f.kept] == [], gone
        for stack in remaining:
            code, out, err = run(root, endpoint, "verify", stack)
            assert code == 0, f"{stack} after down {gone}:\n{out}{err}"
            code, out, err = run(root, endpoint, "plan", stack)
            assert code == 0, f"{stack} plans changes after down {gone}:\n{out[-4000:]}{err}"
