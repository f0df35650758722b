"""The test command keeps a module's tests on one worker when they share one expensive set-up (the Harbor
installer's node boots, the drills): pytest-xdist's ``--dist loadgroup`` with ``xdist_group``. pytest 9.2
silently broke that grouping (pytest-dev/pytest-xdist#1386; hence the pin in the Pipfile): this test runs
the real pytest and xdist on a module marked the way ours are and fails if the group is split."""
import re

pytest_plugins = "pytester"


def test_a_module_marked_with_a_group_runs_on_one_worker(pytester):
    pytester.makepyfile(test_grouped="""
        import os
        import pytest

        pytestmark = [pytest.mark.timeout(60), pytest.mark.xdist_group("shared-set-up")]

        @pytest.fixture(scope="module", params=[1, 2, 3, 4])
        def case(request):
            return request.param

        def test_case(case):
            print("worker", os.environ["PYTEST_XDIST_WORKER"])

        def test_other():
            print("worker", os.environ["PYTEST_XDIST_WORKER"])
        """, test_free="""
        def test_free_1(): pass
        def test_free_2(): pass
        """)
    result = pytester.runpytest_subprocess("-n", "3", "--dist", "loadgroup", "-v", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=7)
    workers = {match.group(1) for match in re.finditer(r"\[(gw\d+)\] .*PASSED test_grouped\.py", result.stdout.str())}
    assert len(workers) == 1, f"the grouped module ran on {sorted(workers)}:\n{result.stdout.str()}"
