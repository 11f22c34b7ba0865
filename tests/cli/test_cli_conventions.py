"""The command line follows the conventions people expect (issue 20, point 7): generated probe options with
help, json vs jsonl, a closed pipe ends quietly, progress bars only on a terminal, help on every flag,
--max-rows, sql from a file or standard input, `artlens tables`."""
import argparse
import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from artlens.cli.args import show_progress
from artlens.cli.main import COMMANDS, build_parser, main
from artlens.probes.config import field_help
from artlens.probes.registry import PROBES, available

REPO = Path(__file__).resolve().parents[2]


def _cli(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "artlens", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=120, **kwargs)


def _flags_without_help(parser: argparse.ArgumentParser, path: str):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _flags_without_help(sub, f"{path} {name}")
        elif isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        elif not (action.help or "").strip() or action.help == argparse.SUPPRESS:
            yield f"{path} {'/'.join(action.option_strings) or action.dest}"


# ------------------------------------------------------------------ help everywhere
def test_every_flag_of_every_command_has_help():
    parser = build_parser()
    missing = list(_flags_without_help(parser, "artlens"))
    assert missing == []
    assert {"models", "results", "tables"} <= set(COMMANDS)


def test_every_field_of_every_registered_probe_has_a_description():
    found = available()
    assert set(found) == set(PROBES)
    for name, module in found.items():
        helps = field_help(module.Config)
        missing = [f.name for f in fields(module.Config) if not helps.get(f.name, "").strip()]
        assert missing == [], f"probe {name}: fields without an `Options:` description: {missing}"


def test_field_help_reads_continuation_lines_and_subclass_overrides():
    from dataclasses import dataclass

    from artlens.probes.config import ProbeConfig

    @dataclass(frozen=True)
    class Config(ProbeConfig):
        """Options:
            seed: my own seed text
            label: first line
                and its continuation
        """
        label: str = ""

    helps = field_help(Config)
    assert helps["label"] == "first line and its continuation"
    assert helps["seed"] == "my own seed text"
    assert helps["n_boot"].startswith("bootstrap resamples")   # from the base class


@pytest.mark.parametrize("name", list(PROBES))
def test_probe_help_lists_every_option_of_its_config_with_its_default(name, capsys):
    with pytest.raises(SystemExit) as done:
        main(["probe", name, "--help"])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    config = available()[name].Config
    for f in fields(config):
        if f.name != "table":
            assert f"--{f.name.replace('_', '-')}" in out, f.name
    assert "(default: 1000)" in out                           # n_boot's default, read from the dataclass
    assert field_help(config)["where"].split()[0] in out


def test_probe_runs_with_generated_options_and_lists_repeat_or_use_commas(labelled_store, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["probe", "linear", "--store", str(labelled_store), "--table", "art", "--label", "style",
                 "--group", "artist", "--nuisance", "subject", "--nuisance", "source", "--folds", "3",
                 "--inner-folds", "2", "--n-boot", "40", "--Cs", "1,10", "--json", str(out)]) == 0
    assert "linear on art" in capsys.readouterr().out
    config = json.loads(out.read_text())["config"]
    assert config["group"] == ["artist"] and config["nuisance"] == ["subject", "source"]
    assert config["folds"] == 3 and config["Cs"] == [1.0, 10.0] and config["min_count"] == 10   # its default


@pytest.mark.parametrize("argv, says", [
    (["--labl", "style"], "unrecognized arguments: --labl"),
    (["--folds", "three"], "--folds: invalid int value"),
    (["--Cs", "1,x"], "--Cs: invalid list of float value"),
])
def test_probe_bad_options_exit_2_naming_the_flag(labelled_store, argv, says, capsys):
    with pytest.raises(SystemExit) as done:
        main(["probe", "linear", "--store", str(labelled_store), "--table", "art", *argv])
    assert done.value.code == 2 and says in capsys.readouterr().err


def test_probe_boolean_option_takes_true_or_false_only(labelled_store, capsys):
    with pytest.raises(SystemExit) as done:
        main(["probe", "separability", "--store", str(labelled_store), "--table", "art", "--sets", "source",
              "--umap", "maybe"])
    assert done.value.code == 2 and "expected true or false, got 'maybe'" in capsys.readouterr().err


# ------------------------------------------------------------------ json, jsonl, --max-rows
def _sql(store, query, *flags, capsys):
    code = main(["sql", "--store", str(store), query, *flags])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_is_one_document_and_jsonl_one_object_a_line(labelled_store, capsys):
    query = "SELECT key, style FROM art ORDER BY key LIMIT 3"
    code, out, _ = _sql(labelled_store, query, "--format", "json", capsys=capsys)
    assert code == 0 and json.loads(out) == [{"key": "k000", "style": "s0"}, {"key": "k001", "style": "s1"},
                                             {"key": "k002", "style": "s2"}]
    code, out, _ = _sql(labelled_store, query, "--format", "jsonl", capsys=capsys)
    assert code == 0 and [json.loads(line)["key"] for line in out.splitlines()] == ["k000", "k001", "k002"]
    code, out, _ = _sql(labelled_store, "SELECT key FROM art WHERE false", "--format", "json", capsys=capsys)
    assert code == 0 and json.loads(out) == []
    code, out, _ = _sql(labelled_store, "SELECT key FROM art WHERE false", "--format", "jsonl", capsys=capsys)
    assert code == 0 and out == ""


def test_neighbors_and_tables_take_json_and_jsonl_too(labelled_store, capsys):
    assert main(["neighbors", "--store", str(labelled_store), "--table", "art", "--key", "k000", "-k", "2",
                 "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and len(rows) == 2 and "k000" not in [r["key"] for r in rows]
    assert main(["tables", "--store", str(labelled_store), "--format", "jsonl"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_table_format_cuts_at_max_rows_and_says_so(labelled_store, capsys):
    query = "SELECT key FROM art ORDER BY key LIMIT 30"
    code, out, err = _sql(labelled_store, query, capsys=capsys)   # default: 20 rows
    assert code == 0 and "k000" in out and "k029" in out and "k015" not in out
    assert "10 of 30 rows not shown; --max-rows 0 shows all" in err
    for every in ("0", "all"):
        code, out, err = _sql(labelled_store, query, "--max-rows", every, capsys=capsys)
        assert code == 0 and all(f"k{i:03d}" in out for i in range(30)) and err == ""
    code, out, err = _sql(labelled_store, query, "--max-rows", "4", capsys=capsys)
    assert code == 0 and "k010" not in out and "26 of 30 rows not shown" in err
    code, out, err = _sql(labelled_store, "SELECT key FROM art LIMIT 3", "--max-rows", "3", capsys=capsys)
    assert code == 0 and err == ""


@pytest.mark.parametrize("bad", ["-1", "ten", "", "1.5"])
def test_max_rows_refuses_what_is_not_a_count(labelled_store, bad, capsys):
    with pytest.raises(SystemExit) as done:
        main(["sql", "--store", str(labelled_store), "SELECT 1", "--max-rows", bad])
    assert done.value.code == 2 and "--max-rows" in capsys.readouterr().err


# ------------------------------------------------------------------ sql from a file or standard input
def test_sql_reads_the_query_from_a_file(labelled_store, tmp_path, capsys):
    q = tmp_path / "q.sql"
    q.write_text("-- how many\nSELECT count(*) AS n\nFROM art;\n", encoding="utf-8")
    for argv in (["-f", str(q)], ["--file", str(q)]):
        assert main(["sql", "--store", str(labelled_store), *argv, "--format", "json"]) == 0
        assert json.loads(capsys.readouterr().out) == [{"n": 240}]


@pytest.mark.slow  # real subprocesses (each imports artlens and DuckDB)
def test_sql_reads_the_query_from_standard_input(labelled_store):
    for argv in (["-"], ["--file", "-"]):
        done = _cli("sql", "--store", str(labelled_store), *argv, "--format", "json",
                    input="SELECT count(*) AS n FROM art WHERE style = 's1'")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == [{"n": 60}]


@pytest.mark.parametrize("case, says", [
    ("none", "no query"),
    ("both", "not both"),
    ("missing", "cannot read the query of --file"),
    ("empty", "is empty"),
    ("folder", "cannot read the query of --file"),
])
def test_sql_query_sources_refused_with_one_line(labelled_store, tmp_path, case, says, capsys):
    empty = tmp_path / "empty.sql"
    empty.write_text("  \n")
    argv = {"none": [], "both": ["SELECT 1", "--file", str(empty)], "missing": ["--file", str(tmp_path / "no.sql")],
            "empty": ["--file", str(empty)], "folder": ["--file", str(tmp_path)]}[case]
    assert main(["sql", "--store", str(labelled_store), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err and err.startswith("artlens sql: error:")


# ------------------------------------------------------------------ a closed pipe
@pytest.mark.slow  # real subprocesses (each imports artlens and DuckDB)
def test_a_reader_that_closes_the_pipe_early_ends_the_command_quietly(labelled_store):
    query = "SELECT a.key, b.key AS other, r.range AS i FROM art a, art b, range(20) r"   # ~20 MB of CSV
    proc = subprocess.Popen([sys.executable, "-m", "artlens", "sql", "--store", str(labelled_store), query,
                             "--format", "csv"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()                                        # as `| head -1` does
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert first.replace(b'"', b"").startswith(b"key,other")
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err
    assert code == 141


@pytest.mark.slow  # real subprocesses (each imports artlens and DuckDB)
def test_head_in_a_shell_pipeline_sees_no_traceback(labelled_store):
    done = subprocess.run(f"{sys.executable} -m artlens sql --store {labelled_store} "
                          "'SELECT a.key FROM art a, art b, range(20)' --format jsonl | head -1", shell=True, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith('{"key": ') and done.stdout.count("\n") == 1
    assert done.stderr == ""


# ------------------------------------------------------------------ progress bars only on a terminal
def test_show_progress_follows_the_terminal_unless_a_flag_says(tmp_path):
    primary, secondary = os.openpty()
    try:
        with os.fdopen(secondary, "w", closefd=False) as tty, open(tmp_path / "log", "w") as log:
            plain = argparse.Namespace(no_progress=False, force_progress=False)
            assert show_progress(plain, tty) is True and show_progress(plain, log) is False
            assert show_progress(argparse.Namespace(no_progress=True, force_progress=False), tty) is False
            assert show_progress(argparse.Namespace(no_progress=False, force_progress=True), log) is True
    finally:
        os.close(primary)
        os.close(secondary)


@pytest.mark.slow  # real subprocesses (each imports artlens and DuckDB)
def test_no_bar_when_stderr_is_a_file_and_one_with_progress(tmp_path):
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        done = subprocess.run([sys.executable, "-m", "artlens", "sample", "--out", str(tmp_path / "a"), "--n", "4"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True, timeout=120)
    assert done.returncode == 0 and (tmp_path / "a" / "manifest.json").exists()
    assert "img/s" not in log.read_text() and "|" not in log.read_text()
    with open(log, "w") as err:
        done = subprocess.run([sys.executable, "-m", "artlens", "sample", "--out", str(tmp_path / "b"), "--n", "4",
                               "--progress"], cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True, timeout=120)
    assert done.returncode == 0 and "shards: 4img" in log.read_text() and "img/s" in log.read_text()


def test_every_command_with_a_progress_bar_offers_both_flags():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    with_bars = [name for name, p in sub.choices.items() if "--no-progress" in p._option_string_actions]
    assert {"extract", "shards", "sample", "perturb", "dedup", "index"} <= set(with_bars)
    for name in with_bars:
        assert "--progress" in sub.choices[name]._option_string_actions, name


# ------------------------------------------------------------------ artlens tables
def test_tables_lists_rows_model_kind_dim_and_parent(labelled_store, capsys):
    assert main(["tables", "--store", str(labelled_store), "--format", "json"]) == 0
    rows = {r["table"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"art", "art_deformed", "prompts"}
    assert rows["art"]["rows"] == 240 and rows["art"]["kind"] == "image" and rows["art"]["dim"] == 16
    assert rows["art"]["model"] == "m" and rows["art"]["pretrained"] == "p" and rows["art"]["parent"] is None
    assert rows["prompts"]["kind"] == "text" and rows["art_deformed"]["parent"] == "art"
    assert main(["tables", "--store", str(labelled_store)]) == 0
    out = capsys.readouterr().out
    assert "art_deformed" in out and "prompts" in out


def test_tables_of_an_empty_folder_and_of_no_folder(tmp_path, capsys):
    assert main(["tables", "--store", str(tmp_path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    code = main(["tables", "--store", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err
