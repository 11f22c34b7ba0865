"""No silent skips in CI (tests/conftest.py): under CI=true a skipping test fails with its reason, unless it is
marked `skip_ok_in_ci`; without CI it skips as before. Checked on a small generated suite run by a pytest
run with tests/conftest.py loaded as a plugin (`-p conftest`)."""
import pytest

from conftest import TESTS

pytest_plugins = ["pytester"]

SUITE = '''
import pytest

@pytest.fixture
def needs_data():
    pytest.skip("needs the shared data at /nowhere")

def test_skips_in_its_body():
    pytest.skip("mounting a tmpfs is not permitted here")

@pytest.mark.skipif(True, reason="needs triton")
def test_skipif_mark():
    pass

def test_skips_in_a_fixture(needs_data):
    pass

@pytest.mark.skip_ok_in_ci("right on any machine")
def test_allowed_skip():
    pytest.skip("allowed")

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False

def test_passes():
    pass
'''

MODULE_SKIP = '''
import pytest
pytest.importorskip("no_such_module_artlens", reason="an optional extra")

def test_never_collected():
    pass
'''


@pytest.fixture
def suite(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    pytester.makeini('[pytest]\nmarkers =\n    skip_ok_in_ci(reason): kept a skip in CI\n')
    pytester.makepyfile(test_suite=SUITE, test_module_skip=MODULE_SKIP)

    def run(ci, *files):
        if ci is None:
            monkeypatch.delenv("CI", raising=False)
        else:
            monkeypatch.setenv("CI", ci)
        return pytester.runpytest("-p", "conftest", "-rA", "--strict-markers", *files)

    return run


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_without_ci_skips_stay_skips(suite, ci):
    result = suite(ci)
    result.assert_outcomes(passed=1, skipped=5, xfailed=1)  # four skips in test_suite.py, one module
    assert result.ret == 0


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_a_skip_fails_unless_it_is_allowed(suite, ci):
    result = suite(ci, "test_suite.py")
    # The body skip fails; the skipif mark and the fixture skip, both in setup, are errors; the marked skip
    # stays a skip and the xfail an xfail.
    result.assert_outcomes(passed=1, failed=1, errors=2, skipped=1, xfailed=1)
    assert result.ret != 0
    out = result.stdout.str()
    for reason in ("mounting a tmpfs is not permitted here", "needs triton", "needs the shared data at /nowhere"):
        assert reason in out, reason
    assert out.count(f"skipped under CI={ci!r}, and a skip in CI is a failure") >= 3
    assert "SKIPPED [1] test_suite.py" in out and ": allowed" in out


def test_under_ci_a_module_level_skip_fails_collection(suite):
    result = suite("true", "test_module_skip.py")
    result.assert_outcomes(errors=1)
    assert result.ret != 0
    assert "collecting test_module_skip.py was skipped under CI='true'" in result.stdout.str()
    assert "an optional extra" in result.stdout.str()
