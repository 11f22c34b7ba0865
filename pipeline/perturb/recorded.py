"""The suite a deformation table was made with, found again from its catalog entry, and the contact sheet of one
of its paintings drawn on demand (`artlens.api.deformation_sheet`, the explorer's painting page).

`artlens perturb` records `Suite.describe()` at the start of the table's `preprocess`: the suite's name, the
first 12 hex digits of its digest and its deformations. The suite is the bundled one (pipeline/perturb/suites/,
the one of that name first) that, restricted to those deformations, has that digest; a suite read from another
YAML file, or a bundled one changed since, matches none, and that is said (never a sheet of other settings).
The sheet is `contact_sheet` of the clean row's own bytes (`Store.image_bytes` of the parent table) decoded as
`write_examples` decodes a shard's sample (`decode_image` with the same `max_pixels`): the same pixels."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from artlens.errors import UserError
from artlens.pipeline.imaging.decode import DEFAULT_MAX_PIXELS, decode_image
from artlens.pipeline.perturb.suite import SUITES_DIR, Suite, SuiteError, load_suite

if TYPE_CHECKING:
    from PIL import Image

    from artlens.store.catalog import TableEntry
    from artlens.store.query import Store

#: `Suite.describe()` as it starts a deformation table's `preprocess`.
DESCRIPTION = re.compile(r"deformation suite (?P<name>.+?) sha256:(?P<digest>[0-9a-f]{12}) \((?P<names>[^;()]*);")
DEFORMATION_KIND = "deformation"


class UnknownSuite(UserError):
    """A deformation table whose suite no bundled suite reproduces: its sheets cannot be drawn again.
    `suite_name` is the name its catalog records ('' when it records none)."""

    def __init__(self, message: str, suite_name: str = ""):
        super().__init__(message, argument="table")
        self.suite_name = suite_name


def _bundled(first: str) -> list:
    paths = sorted(SUITES_DIR.glob("*.yaml"))
    return sorted(paths, key=lambda p: p.stem != first)


def recorded_suite(entry: "TableEntry") -> Suite:
    """The suite deformation table `entry` was made with (restricted to its deformations), rebuilt from a
    bundled suite whose digest is the one its catalog records; UnknownSuite when none is."""
    if entry.kind != DEFORMATION_KIND:
        raise UserError(f"table {entry.name!r} is a {entry.kind!r} table, not a deformation table of "
                        "`artlens perturb`", argument="table")
    found = DESCRIPTION.match(entry.preprocess or "")
    if found is None:
        raise UnknownSuite(f"deformation table {entry.name!r} records no suite its sheets can be drawn with "
                           f"(preprocess {entry.preprocess[:80]!r})")
    name, digest = found["name"], found["digest"]
    names = [n.strip() for n in found["names"].split(",") if n.strip()]
    for path in _bundled(name):
        try:
            suite = load_suite(str(path)).select(names)
        except SuiteError:
            continue
        if suite.names == names and suite.digest.startswith(digest):
            return suite
    raise UnknownSuite(f"deformation table {entry.name!r} was made with suite {name!r} sha256:{digest} "
                       f"({', '.join(names)}), which no bundled suite ({', '.join(p.stem for p in _bundled(name))}) "
                       "reproduces (a suite file of your own, or a bundled one changed since): its contact sheets "
                       "cannot be drawn again; `artlens perturb --save-examples N` draws them with the suite",
                       suite_name=name)


def row_sheet(store: "Store", table: str, key: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> "Image.Image":
    """The contact sheet of row `key` of deformation table `table`: its clean painting (from the parent table)
    under every deformation and severity of the table's suite. UserErrors: not a deformation table, a suite no
    bundled one reproduces, a key the table does not hold, a parent without images (the store's message)."""
    from artlens.pipeline.perturb.contactsheet import contact_sheet
    from artlens.store.filters import quote_ident

    entry = store.entry(table)
    suite = recorded_suite(entry)
    if not store.sql(f"SELECT 1 FROM {quote_ident(table)} WHERE key = ? LIMIT 1", [key]).num_rows:
        raise UserError(f"deformation table {table!r} has no rows of key {key!r}", argument="key")
    data, _ = store.image_bytes(entry.parent, key)
    return contact_sheet(decode_image(data, max_pixels), key, suite)
