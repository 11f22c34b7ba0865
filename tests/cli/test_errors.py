"""One exception root: every artlens exception is an `ArtlensError`; the CLI exits 2 on a `UserError` (one line,
its Python arguments named by their flags) and 1 on anything else (one line; the traceback with -v)."""
import importlib
import inspect

import pytest

from artlens.cli.args import flag
from artlens.cli.main import main
from artlens.errors import ArtlensError, MissingInput, OutputExists, UserError
from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.shards.config import ShardsConfig
from artlens.store.layout import StoreLayout
from benchmarks.synthetic_tables import write_synthetic_table
from test_layout import MODULES


def test_every_exception_class_derives_from_the_root():
    found = {}
    for name in MODULES:
        if name.startswith(("artlens.pipeline", "artlens.store", "artlens.probes", "artlens.api")):
            module = importlib.import_module(name)
            found.update({f"{name}.{k}": v for k, v in vars(module).items() if inspect.isclass(v)
                          and issubclass(v, BaseException) and v.__module__ == name})
    assert len(found) >= 25 and "artlens.pipeline.shards.tarsamples.TarCut" in found
    assert [k for k, v in found.items() if not issubclass(v, ArtlensError)] == []
    # refinements of a builtin stay catchable as that builtin
    assert issubclass(found["artlens.probes.registry.UnknownProbe"], KeyError)
    assert issubclass(MissingInput, FileNotFoundError) and issubclass(OutputExists, FileExistsError)
    assert not issubclass(found["artlens.pipeline.shards.tarsamples.TarCut"], UserError)  # internal control flow


def test_the_python_api_names_python_arguments():
    with pytest.raises(UserError) as exc:
        ShardsConfig(source="s", out="o", shard_size=0)
    assert str(exc.value) == "shard_size must be at least 1, got 0" and exc.value.argument == "shard_size"
    with pytest.raises(UserError, match="^batch_size must be at least 1, got 0$"):
        ExtractConfig(shards="s", store="st", table="t", batch_size=0)


def test_a_user_error_exits_2_with_one_line_naming_the_flag(tmp_path, capsys):
    code = main(["shards", str(tmp_path), "--out", str(tmp_path / "out"), "--shard-size", "0"])
    assert (code, capsys.readouterr().err) == (2, "artlens shards: error: --shard-size must be at least 1, got 0\n")
    code = main(["extract", "--shards", str(tmp_path), "--store", str(tmp_path / "st"), "--table", "t",
                 "--decode-threads", "0"])
    assert (code, capsys.readouterr().err) == (
        2, "artlens extract: error: --decode-threads must be at least 1, got 0\n")


@pytest.fixture
def corrupt_part(tmp_path):
    """A store whose first part of table `vec` is not Parquet: pyarrow raises ArrowInvalid (a ValueError) —
    a broken store, not bad arguments."""
    write_synthetic_table(tmp_path, "vec", n=200, dim=8, part_rows=100, clusters=4, seed=1)
    StoreLayout.at(tmp_path).parts("vec")[0].write_bytes(b"not parquet at all")
    return ["index", "--store", str(tmp_path), "--table", "vec", "--no-progress"]


def test_any_other_error_exits_1_in_one_line_without_a_traceback(corrupt_part, capsys):
    assert main(corrupt_part) == 1
    err = capsys.readouterr().err
    assert err.startswith("artlens index: internal error: ArrowInvalid: ") and err.count("\n") == 1
    assert "magic bytes" in err and err.endswith("(run with -v for the traceback)\n") and "Traceback" not in err


def test_verbose_prints_the_traceback_of_an_internal_error(corrupt_part, capsys):
    assert main(["-v", *corrupt_part]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "read_vectors" in err
    last = err.splitlines()[-1]
    assert last.startswith("artlens index: internal error: ArrowInvalid: ") and "run with -v" not in last


def _rendered(message: str, argument) -> str:
    return UserError(message, argument=argument).render(flag)


def test_rendering_renames_whole_word_mentions_only():
    assert _rendered("give store and table together", ("store", "table")) == "give --store and --table together"
    assert _rendered("steps must be at least 2 and batch_size at least 1", ("steps", "batch_size")) == \
        "--steps must be at least 2 and --batch-size at least 1"
    assert _rendered("k must be at least 1, got 0", "k") == "-k must be at least 1, got 0"  # FLAGS table
    # paths, quoted values, longer names and probe options (name=...) are not mentions
    assert _rendered("/data/out.d/out already exists; out 'out'", "out") == "/data/out.d/out already exists; --out 'out'"
    assert _rendered("models over table=<t>; the table's own", ("models", "table")) == \
        "--models over table=<t>; the table's own"


def test_rendering_renames_only_the_marked_mentions_where_there_are_marks():
    message = "table 'x' was made otherwise (table has 3 rows). Use another `table`, or `overwrite` to replace it."
    assert _rendered(message, ("table", "overwrite")) == \
        "table 'x' was made otherwise (table has 3 rows). Use another --table, or --overwrite to replace it."
    assert UserError("plain").render(flag) == "plain" and UserError("plain").argument is None
