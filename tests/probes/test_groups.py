"""Split groups (probes/groups.py): one meaning of `group` in every probe, several columns joined by
"shares a value in any of them", and the count of near-duplicate pairs that straddle folds."""
import numpy as np
import pytest

from artlens.cli import probe as probe_cli
from artlens.cli.main import build_parser
from artlens.probes import linear
from artlens.probes.groups import as_columns, combine, fold_of_rows, group_ids, straddling_pairs


def obj(*values):
    return np.asarray(values, dtype=object)


def test_rows_sharing_a_value_in_any_column_are_one_group():
    artist = obj("a", "a", "b", "c", "d", None)
    dup = obj(None, "x", "x", "y", "y", None)
    ids = combine([artist, dup])
    # 0-1 share an artist, 1-2 a dup group, so 0,1,2 are one group; 3-4 share a dup group; 5 links nothing
    assert ids.tolist() == [0, 0, 0, 1, 1, 2]
    assert combine([artist]).tolist() == [0, 0, 1, 2, 3, 4]
    assert group_ids({"artist": artist, "dup": dup}, ()) is None
    named = group_ids({"artist": artist, "dup": dup}, "artist").tolist()
    assert named[:5] == ["a", "a", "b", "c", "d"] and named[5] not in named[:5] + ["None"]  # NULL names nothing
    assert group_ids({"artist": artist, "dup": dup}, ("artist", "dup")).tolist()[:5] == ["a"] * 3 + ["c", "c"]
    assert len(set(group_ids({"a": obj(None, None)}, "a"))) == 2     # two NULL rows are two groups


def test_chains_through_many_columns_and_numbers_are_compared_as_text():
    n = 200
    a = obj(*[i // 2 for i in range(n)])            # pairs (0,1) (2,3) ...
    b = obj(*[(i + 1) // 2 for i in range(n)])      # pairs (1,2) (3,4) ...: together one chain of all rows
    assert set(combine([a, b]).tolist()) == {0}
    assert combine([obj(1, "1", 1.0)]).tolist() == [0, 0, 1]   # '1' == 1, but 1.0 is the text '1.0'


def test_config_group_is_a_tuple_of_columns_whatever_it_was_given_as():
    assert as_columns(None) == as_columns("") == ()
    assert as_columns("artist") == ("artist",) and as_columns(["a", "b"]) == ("a", "b")
    assert linear.Config(table="t", label="s", group="artist").group == ("artist",)
    assert linear.Config.from_dict({"table": "t", "label": "s", "group": ["a", "b"]}).group == ("a", "b")
    assert linear.Config(table="t", label="s").group == ()


def test_cli_group_is_repeatable_and_comma_separated():
    argv = ["probe", "linear", "--store", "st", "--table", "t"]
    a, _ = build_parser(argv).parse_known_args(argv)
    a._extra = ["--label", "style", "--group", "artist", "--group", "dup_group,school"]
    options = probe_cli._options(a, "linear")
    assert options["group"] == ("artist", "dup_group", "school")
    assert linear.Config.from_dict(options).group == ("artist", "dup_group", "school")


def test_straddling_pairs_count_duplicate_pairs_tested_in_different_folds():
    dup = obj("d", "d", "d", None, "e", "e", "f")
    fold = np.array([0, 1, 1, 0, 2, 2, 0])
    # group d: pairs (0,1) and (0,2) straddle, (1,2) does not; e: none; f: one row; None: not a duplicate
    assert straddling_pairs(dup, fold) == 2
    splits = [(np.array([1, 2, 4, 5]), np.array([0, 3, 6])), (np.array([0]), np.array([1, 2])),
              (np.array([0]), np.array([4, 5]))]
    assert fold_of_rows(7, splits).tolist() == fold.tolist()
    assert straddling_pairs(dup, np.zeros(7, dtype=int)) == 0


@pytest.mark.parametrize("bad", [[1, 2], ("a", 3)])
def test_as_columns_keeps_names_as_text(bad):
    assert all(isinstance(c, str) for c in as_columns(bad))


def test_group_ids_of_one_column_are_its_values_and_columns_combine():
    prompt = np.array(["b", "b", "a", "c", "c", "a", "d"], dtype=object)
    assert group_ids({"prompt": prompt}, ("prompt",)).tolist() == prompt.astype(str).tolist()
    link = np.array(["x", "y", "z", "y", "w", "v", "u"], dtype=object)  # rows 1 and 3 join prompts b and c
    assert group_ids({"prompt": prompt, "link": link}, ("prompt", "link")).tolist() == [
        "b", "b", "a", "b", "b", "a", "d"]
    assert group_ids({"prompt": prompt}, ()) is None
