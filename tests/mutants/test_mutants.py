"""The mutation check's own tests (tests/mutants/harness.py, `make mutants`), fast enough for every run: each
curated mutation still applies (its snippet occurs exactly once, the result compiles, its tests exist), so a
refactor that makes one stale fails here; and the harness's scratch copy, import shim and verdicts work, on
one mutation and a tiny test, without touching the working tree."""
from __future__ import annotations

import ast
import hashlib
import re

import harness
import pytest
from conftest import REPO

#: the seven that once survived the suite (issue 21, point 6)
ISSUE_21 = {"linear-predictions-permuted", "linear-ignores-group", "period-ignores-group",
            "bootstrap-resamples-rows", "part-written-in-place", "unreadable-shard-failures-dropped",
            "models-resume-any-table"}


def test_every_mutation_applies_once_compiles_and_names_tests_that_exist():
    mutations = harness.load_mutations()
    assert ISSUE_21 <= {m.id for m in mutations} and len(mutations) >= 15
    for m in mutations:
        compile(harness.mutated_source(m), m.file, "exec", ast.PyCF_ONLY_AST)
        for test in m.tests:
            file, _, name = test.partition("::")
            defined = rf"^def {re.escape(name.split('[')[0])}\("
            assert not name or re.search(defined, (REPO / file).read_text(), re.MULTILINE), f"{m.id}: no {test}"


def _mutation(find: str, replace: str) -> harness.Mutation:
    return harness.Mutation("m", "w", "f.py", find, replace, ("t",))


def test_a_snippet_must_occur_exactly_once_and_keeps_its_indentation():
    with pytest.raises(harness.MutationError, match="occurs 0 times"):
        harness.mutate("a = 1\n", _mutation("b = 2", "b = 3"))
    with pytest.raises(harness.MutationError, match="occurs 2 times"):
        harness.mutate("a = 1\na = 1\n", _mutation("a = 1", "a = 2"))
    text = "def f():\n    if x:\n        y()\n    z()\n"
    assert harness.mutate(text, _mutation("if x:\n    y()\nz()", "z()\nif x:\n    y()")) == \
        "def f():\n    z()\n    if x:\n        y()\n"
    with pytest.raises(harness.MutationError):  # relative indentation differs: no match
        harness.mutate(text, _mutation("if x:\n  y()", "w()"))


TINY = '''
import subprocess, sys
from pathlib import Path

import numpy as np

import artlens.probes.stats as stats

COPY = Path(__file__).resolve().parents[1]


def test_the_copy_is_imported_here_and_in_a_child():
    assert Path(stats.__file__).resolve().is_relative_to(COPY)
    child = subprocess.run([sys.executable, "-c", "import artlens.probes.stats as s; print(s.__file__)"],
                           capture_output=True, text=True, check=True)
    assert Path(child.stdout.strip()).resolve().is_relative_to(COPY)
    assert stats.permutation_p(1.0, np.zeros(9)) == 0.1
'''


def test_a_mutant_in_a_scratch_copy_is_imported_by_pytest_and_its_children_and_killed(tmp_path):
    original = hashlib.sha256((REPO / "probes" / "stats.py").read_bytes()).hexdigest()
    (m,) = [m for m in harness.load_mutations() if m.id == "permutation-p-without-correction"]
    scratch = harness.Scratch.prepare(tmp_path / "scratch")
    copy = scratch.tree("tiny")
    assert (copy / "probes" / "stats.py").is_file() and not (copy / ".venv").exists()
    (copy / "tests" / "test_tiny_mutant.py").write_text(TINY)
    env = harness.child_env(scratch.shim, copy)
    assert harness.import_check(copy, env, ["artlens.probes.stats"], deep=True) is None
    tests = ("tests/test_tiny_mutant.py",)

    code, output = harness.run_pytest(copy, tests, env, 120, tmp_path / "t0", tmp_path / "unmutated.log")
    assert harness.judge(code, output, 120) == ("survived", "1 passed"), output  # the unmutated copy passes

    (copy / m.file).write_text(harness.mutated_source(m))
    code, output = harness.run_pytest(copy, tests, env, 120, tmp_path / "t1", tmp_path / "mutant.log")
    assert harness.judge(code, output, 120) == \
        ("killed", "tests/test_tiny_mutant.py::test_the_copy_is_imported_here_and_in_a_child"), output
    assert hashlib.sha256((REPO / "probes" / "stats.py").read_bytes()).hexdigest() == original


def test_verdicts():
    assert harness.judge(0, "3 skipped in 0.1s", 9) == ("error", "no test ran (3 skipped)")
    assert harness.judge(2, "1 error in 0.1s", 9)[0] == "error"  # a collection error is no kill
    assert harness.judge(None, "", 9) == ("error", "timeout after 9 s")
    assert harness.judge(1, "FAILED tests/a.py::t - assert 0\n1 failed in 1s", 9) == ("killed", "tests/a.py::t")
