"""`artlens probe run SUITE.yaml` and `artlens probe KIND`: results saved in the store, errors before work."""
import json

import pytest

from artlens import store
from artlens.cli.main import main
from artlens.probes.config import ConfigError
from artlens.probes.runner import load_suite, run_suite


def write(path, text):
    path.write_text(text)
    return path


def test_suite_runs_every_probe_and_keeps_results(labelled_store, tmp_path, capsys):
    suite = write(tmp_path / "suite.yaml", """
defaults: {seed: 0, n_boot: 50}
probes:
  - {probe: linear, table: art, label: style}
  - {probe: knn, table: art, labels: [style, subject]}
""")
    assert main(["probe", "run", str(suite), "--store", str(labelled_store)]) == 0
    out = capsys.readouterr().out
    assert "linear on art (n=240): accuracy" in out and "knn on art (n=240)" in out
    with store.open(labelled_store) as s:
        kept = {(r["probe"], r["config"].get("label") or ",".join(r["config"].get("labels") or []))
                for r in s.results()}
    assert {("linear", "style"), ("knn", "style,subject")} <= kept


def test_single_probe_cli_writes_json(labelled_store, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["probe", "rsa", "--store", str(labelled_store), "--table", "art", "--label", "style",
                 "--permutations", "49", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["probe"] == "rsa" and data["config"]["permutations"] == 49 and data["n"] == 240


def test_bad_suites_fail_before_running_anything(labelled_store, tmp_path):
    with store.open(labelled_store) as s:
        before = len(s.results())
    bad_probe = write(tmp_path / "a.yaml", "probes:\n  - {probe: linear, table: art, label: style}\n  - {probe: nope}\n")
    with pytest.raises(KeyError, match="unknown probe 'nope'"):
        run_suite(bad_probe, labelled_store, progress=False)
    with store.open(labelled_store) as s:
        assert len(s.results()) == before
    with pytest.raises(ConfigError, match="unknown top-level key"):
        load_suite(write(tmp_path / "b.yaml", "probes: []\nextra: 1\n"))
    with pytest.raises(ConfigError, match="no store given"):
        run_suite(write(tmp_path / "c.yaml", "probes: [{probe: linear, table: art, label: style}]\n"))
    with pytest.raises(ConfigError, match="unknown option"):
        run_suite(write(tmp_path / "d.yaml", "probes:\n  - {probe: knn, table: art, labels: [style]}\n"
                                             "  - {probe: linear, table: art, labl: style}\n"),
                  labelled_store, progress=False)
    with store.open(labelled_store) as s:
        assert len(s.results()) == before  # the valid first step did not run either
