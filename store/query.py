"""The store's query API: DuckDB views over the Parquet parts. Probes read tables only through this.

    s = store.open("artstore")
    s.tables()                         # ['sample']
    s.sql("SELECT key, style FROM sample LIMIT 3")   # -> pyarrow.Table

Every table is a view whose `embedding` is typed FLOAT[dim], so `array_cosine_similarity` works directly.
Also defined: `failures` (table, key, shard, stage, error), `catalog` (one row per table) and `results`
(one row per probe result and metric: store/results.py).

A store at a URL (`s3://bucket/artstore`) is read through a lazy mirror (store/remote.py): opening it
fetches the catalog and the results; a table's parts (and `failures`' parts, an index's files) are fetched
when a query first names it (`Store.prepare`), so a query reads only the tables it names.

A key table (no embeddings: the near-duplicate groups of `artlens dedup`, kind `duplicates`, `parent` T) is
a view of its rows; T's view then also carries its `dup_group` (a LEFT JOIN on key; a row of T the groups do
not cover, added since, is its own group and the store warns that they are stale).
"""
from __future__ import annotations

import json
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from artlens.store.catalog import DUP_GROUP_COLUMN, DUPLICATES_KIND, Catalog, IndexEntry, TableEntry
from artlens.store.errors import ArtlensWarning, UserError
from artlens.store.filters import quote_ident
from artlens.store.layout import LayoutError, StoreLayout, check_table_name
from artlens.store.parts import FAILURE_SCHEMA, fold
from artlens.store.results import (NotAResult, read_result, read_rows, result_files, results_table, rows_of,
                                    write_rows)

if TYPE_CHECKING:  # FAISS is imported only where an index is used: writers and SQL never load it
    from artlens.store.index import LoadedIndex


#: Index fields shown in the `catalog` view, as index_<field>.
_INDEX_COLUMNS = ("kind", "factory", "params", "rows", "build_s", "memory_bytes", "recall_at_10", "updated")


class StoreError(UserError, RuntimeError):
    """A store, table or query that cannot be read as asked (no store there, no such table, SQL that fails)."""


class StoreWarning(ArtlensWarning):
    """A store whose files and catalog disagree (a part gone, parts the catalog does not know): queries run
    on the files that are there; the message names the table, both counts and `artlens repair`."""


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


#: The view of every probe result (store/results.py); a table of that name keeps its own view instead.
RESULTS_VIEW = "results"


class Store:
    def __init__(self, root: str | Path):
        from artlens.store.remote import is_remote, mirror

        if is_remote(root):  # a reader's mirror is lazy: tables are fetched when a query names them
            m = mirror(str(root), lazy=True)
            self.layout = StoreLayout(m.local, m)
        else:
            self.layout = StoreLayout.at(root)
        if not self.layout.root.exists():
            raise StoreError(f"no store at {self.layout.root} (run `artlens extract --store {root}` first)")
        self.con = duckdb.connect(":memory:")
        self._entries: dict[str, TableEntry] = {}
        self._indexes: dict[str, LoadedIndex | None] = {}
        self._damaged: dict[str, str] = {}
        self._duplicates: dict[str, str] = {}
        self._pending: set[str] = set()   # views of a URL store whose files are not fetched yet
        self._repair = f"artlens repair --store {root}"
        self._define_functions()
        self.refresh()

    def _define_functions(self) -> None:
        """`cosine(a, b)` and `neighbors(table, embedding, k) -> VARCHAR[]` (keys, best first, via the index)."""
        from duckdb import list_type, sqltypes as t

        self.con.execute("CREATE MACRO cosine(a, b) AS array_cosine_similarity(a, b)")

        def neighbor_keys(table: str, embedding: list, k: int) -> list:
            from artlens.store.neighbors import search

            return [hit[0] for hit in search(self, table, embedding, int(k))]

        self.con.create_function("neighbors", neighbor_keys, [t.VARCHAR, list_type(t.FLOAT), t.INTEGER],
                                 list_type(t.VARCHAR), side_effects=False)

    def refresh(self) -> None:
        """Re-read the catalog and (re)define the views; new parts of known tables appear without it.

        A view whose parts cannot be read (a truncated part) is replaced by one whose every query fails naming
        the part and the repair, so `SELECT 1`, the other tables and their imports still work; that costs
        nothing more than before (DuckDB reads the footers to define a view anyway; the parts are searched
        for the damaged one only when that fails). A table with fewer parts than the catalog counted, and
        parts the catalog does not know, warn (StoreWarning)."""
        catalog = Catalog(self.layout.catalog_path)
        entries, indexes = catalog.entries(), catalog.indexes()
        self._entries = {e.name: e for e in entries}
        self._indexes = {}
        self._damaged = {}
        self._duplicates = {}
        lazy = self._lazy()
        self._pending = {e.name for e in entries} | {"failures"} if lazy else set()
        if not lazy:
            self._define_tables(entries)
            self._define_uncatalogued(catalog)
            self._define_failures()
        self._register("_catalog_tables", TableEntry, entries)
        self._register("_catalog_indexes", IndexEntry, indexes)
        cols = ", ".join(f"i.{c} AS index_{c}" for c in _INDEX_COLUMNS)
        self.con.execute(f"CREATE OR REPLACE VIEW catalog AS SELECT t.*, {cols} FROM _catalog_tables t "
                         "LEFT JOIN _catalog_indexes i ON i.name = t.name")
        self._define_results()

    def results_table(self) -> pa.Table:
        """Every probe result of the store, one row per (result, metric): the `results` view's rows
        (store/results.py SCHEMA). A file that is not a result is left out with a StoreWarning naming it."""
        models = {e.name: (e.model, e.pretrained or (e.checkpoint_sha256 or "")) for e in self._entries.values()}
        table, problems = results_table(self.layout.results_dir(), models)
        for path, why in problems:
            warnings.warn(StoreWarning(f"probe result {path} is left out of the results: {why}; move it out "
                                       f"of {self.layout.results_dir()} or re-run the probe that wrote it"),
                          stacklevel=3)
        return table

    def _define_results(self) -> None:
        """The `results` view (registered rows, re-read at every refresh and save_result); a table named
        `results` keeps that name, with a warning, and the rows stay readable as `Store.results_table()`."""
        if RESULTS_VIEW in map(fold, self._entries):
            warnings.warn(StoreWarning(
                f"the store has a table named {RESULTS_VIEW!r}, so the `results` view of the probe results is "
                "not defined; read them with artlens.store.open(...).results_table()"), stacklevel=4)
            return
        self.con.register(RESULTS_VIEW, self.results_table())

    def _lazy(self) -> bool:
        """Whether this store's files come with `prepare` (a URL store's mirror, not pulled whole)."""
        remote = self.layout.remote
        return remote is not None and not getattr(remote, "complete", True)

    def _define_tables(self, entries: list[TableEntry]) -> None:
        table_parts = {}
        for entry in entries:
            parts = table_parts[entry.name] = self.layout.parts(entry.name)
            self._define(entry.name, self._table_sql(entry, parts), parts, f"table {entry.name!r}",
                         _table_columns(entry.dim, entry.has_embeddings))
            if entry.name not in self._damaged:
                self._check_counts(entry, parts)
        names = {e.name for e in entries}
        for entry in self._entries.values():
            if entry.kind == DUPLICATES_KIND and entry.parent in self._entries and (
                    entry.name in names or entry.parent in names) and not self._pending & {entry.name, entry.parent}:
                if entry.parent not in table_parts:
                    table_parts[entry.parent] = self.layout.parts(entry.parent)
                if entry.name not in table_parts:
                    table_parts[entry.name] = self.layout.parts(entry.name)
                self._join_duplicates(self._entries[entry.parent], entry, table_parts)

    def _define_failures(self) -> None:
        failure_parts = self.layout.failure_parts()
        self._define("failures", self._failures_sql(failure_parts), failure_parts, "the `failures` view",
                     {f.name: "VARCHAR" for f in FAILURE_SCHEMA}, noun="failures part")

    def prepare(self, query: str) -> None:
        """Fetch the files of the views `query` names (a URL store; nothing to do for a local one): each
        table's parts (and its near-duplicate groups', which its view joins), `failures`' parts. A query
        DuckDB cannot parse for its table names fetches every table (it will fail or need them)."""
        if not self._pending:
            return
        names = _table_names(self.con, query)
        named = None if names is None else {fold(n) for n in names}
        wanted = {n for n in self._pending if named is None or fold(n) in named}
        for name in list(wanted):  # a table's view joins its groups; the groups need their parent's view
            entry = self._entries.get(name)
            if entry is not None and entry.kind == DUPLICATES_KIND and entry.parent in self._pending:
                wanted.add(entry.parent)
        wanted |= {e.name for e in self._entries.values()
                   if e.kind == DUPLICATES_KIND and e.parent in wanted and e.name in self._pending}
        self.materialize(sorted(wanted))

    def materialize(self, names: list[str]) -> None:
        """Fetch these views' files into the mirror and define them (see `prepare`)."""
        names = [n for n in names if n in self._pending]
        if not names:
            return
        remote = self.layout.remote
        entries = []
        for name in names:
            if name == "failures":
                remote.fetch(self.layout.root / "failures")
            else:
                remote.fetch(self.layout.table_dir(name))
                entries.append(self._entries[name])
        self._pending -= set(names)
        self._define_tables(entries)
        if "failures" in names:
            self._define_failures()

    def _join_duplicates(self, parent: TableEntry, dups: TableEntry, table_parts: dict[str, list[Path]]) -> None:
        """Give the parent's view the `dup_group` of its duplicates table (LEFT JOIN on key; a row not covered
        is its own group). Skipped, with a warning, when the parent has a column of that name itself; skipped
        silently when either view cannot be read (its queries say why) or the groups have no part yet."""
        name = parent.name
        if name in self._damaged or dups.name in self._damaged or not table_parts.get(dups.name):
            return
        if not table_parts.get(name):
            return
        columns = [c for c, *_ in self.con.execute(f'DESCRIBE "{name}"').fetchall()]
        if fold(DUP_GROUP_COLUMN) in map(fold, columns):
            warnings.warn(StoreWarning(
                f"table {name!r} has a column {DUP_GROUP_COLUMN!r} of its own, so the near-duplicate groups of "
                f"{dups.name!r} are not joined into its view; query them from {dups.name!r}"), stacklevel=4)
            return
        base = self._table_sql(parent, table_parts[name])
        sql = (f'SELECT t.*, coalesce(d.{DUP_GROUP_COLUMN}, t.key) AS {DUP_GROUP_COLUMN} FROM ({base}) t '
               f'LEFT JOIN "{dups.name}" d ON d.key = t.key')
        try:
            self.con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {sql}')
        except duckdb.Error as exc:  # e.g. a duplicates part without the columns: the parent stays as it was
            warnings.warn(StoreWarning(f"the near-duplicate groups {dups.name!r} cannot be joined to table "
                                       f"{name!r} ({_one_line(exc)}); re-run `artlens dedup`"), stacklevel=4)
            self.con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {base}')
            return
        self._duplicates[name] = dups.name
        if parent.rows and dups.rows != parent.rows:
            warnings.warn(StoreWarning(
                f"table {name!r} holds {_n(parent.rows, 'row')} but its near-duplicate groups {dups.name!r} "
                f"were found among {_n(dups.rows, 'row')}: rows added since are each their own group; re-run "
                f"`artlens dedup --store {self.layout.root} --table {name}`"), stacklevel=4)

    def duplicates_of(self, table: str) -> str | None:
        """The duplicates table whose `dup_group` the view of `table` carries, or None."""
        return self._duplicates.get(table)

    def _register(self, name: str, cls: type, rows: list) -> None:
        """Catalog rows as an Arrow table (typed from the dataclass even when there are none)."""
        empty = cls(name="")
        table = pa.Table.from_pylist([vars(r) for r in rows or [empty]])
        self.con.register(name, table if rows else table.slice(0, 0))

    def _table_sql(self, entry: TableEntry, parts: list[Path] | None = None) -> str:
        glob = self.layout.parts_glob(entry.name)
        empty = not (self.layout.parts(entry.name) if parts is None else parts)
        if not entry.has_embeddings:  # a key table: its columns as written
            return ("SELECT NULL::VARCHAR AS key WHERE false" if empty
                    else f"SELECT * FROM read_parquet({_quote(glob)}, union_by_name = true)")
        if empty:
            return f"SELECT NULL::VARCHAR AS key, NULL::FLOAT[{entry.dim}] AS embedding WHERE false"
        return (f"SELECT * REPLACE (embedding::FLOAT[{entry.dim}] AS embedding) "
                f"FROM read_parquet({_quote(glob)}, union_by_name = true)")

    def _failures_sql(self, parts: list[Path] | None = None) -> str:
        if not (self.layout.failure_parts() if parts is None else parts):
            return f"SELECT {_FAILURE_COLUMNS} WHERE false"
        return f"SELECT * FROM read_parquet({_quote(self.layout.failures_glob())}, union_by_name = true)"

    def _define(self, name: str, sql: str, parts: list[Path], what: str, columns: dict[str, str],
                noun: str = "part") -> None:
        """The view `name` over `parts`; if DuckDB cannot define it, a view whose every query fails with one
        line naming the unreadable part(s) and the repair (its columns those of the readable parts, else
        `columns`, so that queries naming them reach the message)."""
        try:
            self.con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {sql}')
        except duckdb.Error as exc:
            bad = _unreadable(parts)  # the footers one by one: only once defining the view failed
            self._damaged[name] = self._damage_message(what, bad, exc, noun)
            unread = {path for path, _ in bad}
            self._failing_view(name, self._damaged[name], [p for p in parts if p not in unread], columns)

    def _failing_view(self, name: str, message: str, parts: list[Path], columns: dict[str, str]) -> None:
        """A view of one row whose every column, and its filter, call error(): DuckDB runs it per row, not
        when the view is defined, and cannot prune it, so every query that reads the view fails with it."""
        found = {}
        if parts:
            try:
                found = {c: t for c, t, *_ in self.con.execute(
                    "DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)", [[str(p) for p in parts]]
                ).fetchall()}
            except duckdb.Error:
                found = {}
        merged = {**found, **{c: t for c, t in columns.items() if c not in found or c == "embedding"}}
        fail = f"error({_quote(message)})"  # (embedding: the view's own type, FLOAT[dim])
        for cols in (merged, columns):  # a type DuckDB cannot cast NULL to: the plain columns
            select = ", ".join(f'{fail}::{t} AS "{c.replace(chr(34), chr(34) * 2)}"' for c, t in cols.items())
            try:
                self.con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT {select} FROM range(1) '
                                 f"WHERE {fail} IS NULL")
                return
            except duckdb.Error:
                continue

    def _damage_message(self, what: str, bad: list[tuple[Path, Exception]], exc: Exception, noun: str) -> str:
        if not bad:
            return f"{what} cannot be read: {_one_line(exc)}"
        named = ", ".join(str(p) for p, _ in bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        reason = _one_line(bad[0][1]).split(". ")[0]
        return (f"{what} cannot be read: {noun}{'' if len(bad) == 1 else 's'} {named} "
                f"{'is' if len(bad) == 1 else 'are'} damaged ({reason}); run `{self._repair}` to move "
                f"unreadable parts into {self.layout.quarantine_dir()} and recount, then re-run the extract "
                "or import that wrote them to restore their rows")

    def _check_counts(self, entry: TableEntry, parts: list[Path]) -> None:
        """Warn when the parts hold fewer rows than the catalog counted. Free when as many parts are there
        as were counted (more: an extraction is adding some); else one DuckDB query over the footers."""
        if entry.rows <= 0 or (entry.parts and len(parts) >= entry.parts):
            return
        try:
            found = self.con.execute("SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata(?)",
                                     [[str(p) for p in parts]]).fetchone()[0] if parts else 0
        except duckdb.Error:  # a part vanished meanwhile: the next open tells
            return
        if found >= entry.rows and len(parts) >= entry.parts:
            return
        counted = _n(entry.rows, "row") + (f" in {_n(entry.parts, 'part')}" if entry.parts else "")
        warnings.warn(StoreWarning(
            f"table {entry.name!r}: the catalog counts {counted} but {self.layout.table_dir(entry.name)} holds "
            f"{_n(found, 'row')} in {_n(len(parts), 'part')}, so a part was deleted or moved and queries see "
            f"only the rows that are there: put the part back, or run `{self._repair}` to recount the table "
            "(then re-run the extract or import that wrote it to restore its rows)"), stacklevel=3)

    def _define_uncatalogued(self, catalog: Catalog) -> None:
        """Folders of parts the catalog does not know (the catalog was deleted or replaced): a warning, and a
        view of each name whose queries say to run the repair."""
        def orphans(known) -> list[str]:
            found = []
            for name in self.layout.tables_on_disk():
                try:
                    if name not in known and self.layout.parts(check_table_name(name)):
                        found.append(name)
                except LayoutError:  # a folder that is no table of ours
                    continue
            return found

        names = orphans(self._entries)
        if names:  # a writer may have created a table since the catalog was read: read it again
            names = orphans({e.name for e in catalog.entries()})
        if not names:
            return
        why = (f"the catalog {catalog.path} has no entry for {'it' if len(names) == 1 else 'them'}"
               if catalog.exists()
               else f"the catalog {catalog.path} is missing")
        fix = f"run `{self._repair}` to rebuild the catalog from the parts"
        warnings.warn(StoreWarning(
            f"{'table' if len(names) == 1 else 'tables'} {', '.join(map(repr, names))} "
            f"{'has' if len(names) == 1 else 'have'} parts in {self.layout.root / 'tables'} but {why}: {fix}"),
            stacklevel=3)
        for name in names:
            self._damaged[name] = (f"table {name!r} has parts in {self.layout.table_dir(name)} but no catalog "
                                   f"entry ({why}): {fix}")
            self._failing_view(name, self._damaged[name], self.layout.parts(name), _table_columns(0))

    def damaged(self) -> dict[str, str]:
        """View name → why its queries fail (unreadable parts, parts without a catalog entry)."""
        return dict(self._damaged)

    def tables(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, table: str) -> TableEntry:
        try:
            return self._entries[table]
        except KeyError:
            raise StoreError(f"no table {table!r} in {self.layout.root}; tables: {self.tables()}") from None

    def index(self, table: str) -> LoadedIndex | None:
        """The table's FAISS index (loaded once, brought up to date with new parts), or None."""
        self.materialize([table])
        if table in self._damaged:
            raise StoreError(self._damaged[table])
        if table not in self._indexes:
            if self.layout.remote is not None and self._lazy():
                self.layout.remote.fetch(self.layout.index_dir(table))
            from artlens.store.index import open_index

            self._indexes[table] = open_index(self.layout.root, table, self.entry(table).dim)
        return self._indexes[table]

    def neighbors(self, table: str, key: str | None = None, vector=None, k: int = 10,
                  where: str | None = None) -> pa.Table:
        """The k rows nearest to a row (`key`, itself excluded) or to a vector, best first, with metadata."""
        from artlens.store.neighbors import neighbors_table, query_vector, search

        if (key is None) == (vector is None):
            raise StoreError("give exactly one of key= or vector=")
        exclude = {key} if key is not None else set()
        query = query_vector(self, table, key) if key is not None else vector
        return neighbors_table(self, table, search(self, table, query, k, where, exclude))

    def save_result(self, name: str, result: dict, rows: pa.Table | None = None) -> Path:
        """Keep a probe result (JSON) in the store, replacing one of the same name atomically; `rows` (the
        rows behind it, each with its `key`) beside it as `<name>.rows.parquet`, written first (the JSON's
        rename is the commit); without rows, an earlier rows file of that name is removed."""
        path = self.layout.result_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows_path = self.layout.result_rows_path(name)
        if rows is not None:
            write_rows(rows_path, rows)
            self.layout.push(rows_path)
        elif rows_path.exists():
            rows_path.unlink()
            if self.layout.remote is not None:
                self.layout.remote.delete(rows_path)
        tmp = path.with_name(f".tmp-{path.name}")
        if "created" not in result:  # when it was saved: the `results` view's `created`
            result = {**result, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(path)
        self.layout.push(path)
        if RESULTS_VIEW not in map(fold, self._entries):
            self.con.register(RESULTS_VIEW, self.results_table())
        return path

    def results(self) -> list[dict]:
        """Every probe result kept in the store, by file name; a file that is not a result is left out with
        a StoreWarning naming it."""
        found = []
        for path in result_files(self.layout.results_dir()):
            try:
                data = read_result(path)
                rows_of(path, data, {})  # the same shape the `results` view reads
                found.append({**data, "name": path.stem})  # the name of `result_rows` and the view's `result`
            except NotAResult as exc:
                warnings.warn(StoreWarning(f"probe result {path} is left out: {exc}"), stacklevel=2)
        return found

    def result_rows(self, name: str) -> pa.Table | None:
        """The rows behind the result `name` (its `results()` entry's `name`, the `results` view's `result`),
        or None when it was saved without rows; a damaged rows file warns (StoreWarning) and gives None."""
        path = self.layout.result_rows_path(name)
        try:
            return read_rows(path)
        except NotAResult as exc:
            warnings.warn(StoreWarning(f"the rows of probe result {name!r} ({path}) cannot be read: {exc}; "
                                       "re-run the probe that wrote it"), stacklevel=2)
            return None

    def map_fingerprint(self, table: str) -> str:
        """The fingerprint of a table's parts (names and sizes) that its maps record (store/maps.py)."""
        from artlens.store.maps import fingerprint

        self.entry(table)
        self.materialize([table])
        return fingerprint(self.layout.parts(table))

    def map(self, table: str, method: str = "pca") -> pa.Table | None:
        """The table's stored 2-D map (key, x, y; store/maps.py) by `method`, or None when there is none or
        the table's parts changed since it was made (stale); an unreadable map file warns and gives None."""
        from artlens.store.maps import UnreadableMap, read_map

        path = self.layout.map_path(table, method)
        if self.layout.remote is not None and self._lazy():   # maps/ is fetched per table, like indexes
            self.layout.remote.fetch(self.layout.maps_dir(table))
        try:
            return read_map(path, self.map_fingerprint(table))
        except UnreadableMap as exc:
            warnings.warn(StoreWarning(f"the {method} map of table {table!r} ({path}) cannot be read ({exc}); "
                                       "it will be made again"), stacklevel=2)
            return None

    def save_map(self, table: str, method: str, keys, xy, info: dict | None = None) -> Path:
        """Keep a table's 2-D map (`keys` and their `xy`, shape (n, 2)) made by `method`, replacing the one
        there atomically. `info` (JSON-ready: seed, ...) goes into its metadata; its `parts` is the fingerprint
        of the parts the map was made from (`map_fingerprint`, taken before reading them), now's by default."""
        from artlens.store.maps import map_table, write_map

        path = self.layout.map_path(table, method)
        info = {**(info or {}), "method": method}
        info.setdefault("parts", self.map_fingerprint(table))
        write_map(path, map_table(keys, xy, info))
        self.layout.push(path)
        return path

    def image(self, table: str, key: str, size: int | None = None):
        """The row's painting (PIL image, upright RGB) from its shard, or its thumbnail of longer side `size`
        (cached in the store). ImageNotFound (store/images.py) for an unknown table or key; ImageUnavailable
        for a table without images or a shard moved, changed or unreadable (never a wrong image)."""
        from artlens.store.images import image

        if size is None:
            return image(self, table, key)
        import io

        from PIL import Image

        data, _ = self.image_bytes(table, key, size)
        return Image.open(io.BytesIO(data)).convert("RGB")

    def image_bytes(self, table: str, key: str, size: int | None = None) -> tuple[bytes, str]:
        """(bytes, media type) of the row's image: the original bytes as stored, or the cached JPEG thumbnail
        of longer side `size` (16..2048). Errors as `image`."""
        if size is None:
            from artlens.store.images import original

            data, media, _, _ = original(self, table, key)
            return data, media
        from artlens.store.thumbnails import MEDIA_TYPE, thumbnail_bytes

        return thumbnail_bytes(self, table, key, size), MEDIA_TYPE

    def image_url(self, table: str, key: str) -> str | None:
        """The image URL of a row of a table without images that names a column of them (`artlens import
        --image-url-column`, the catalog's `image_url_column`); None when the table names none or the row's
        value is empty. ImageNotFound for an unknown table or key."""
        from artlens.store.images import ImageNotFound

        if table not in self._entries:
            raise ImageNotFound(f"no table {table!r} in {self.layout.root}; tables: {self.tables()}",
                                argument="table")
        column = getattr(self._entries[table], "image_url_column", "")
        rows = self.sql(f'SELECT {quote_ident(column) if column else "NULL"} AS url FROM "{table}" WHERE key = ? LIMIT 1',
                        [key]).column("url").to_pylist()
        if not rows:
            raise ImageNotFound(f"no row of key {key!r} in table {table!r}", argument="key")
        return str(rows[0]) if rows[0] not in (None, "") else None

    def saliency_maps(self, table: str, key: str) -> list[dict]:
        """The saliency maps kept for row `key` of `table` (`artlens saliency --key`; store/saliency.py): one
        dict per map, by file name, with its `method`, `text`, `score` and `png` path. A URL store fetches
        the table's maps into its mirror the first time (results/saliency/<table>/)."""
        from artlens.store.saliency import saliency_maps

        self.entry(table)
        return saliency_maps(self.layout, table, key)

    def make_thumbnails(self, table: str, size: int, keys=None, progress: bool = False) -> int:
        """Make and keep the thumbnails of longer side `size` of `keys` (default: every row) that are not
        cached yet; how many were made (rows whose image is unavailable are skipped)."""
        from artlens.store.thumbnails import make

        return make(self, table, size, keys, progress)

    def sql(self, query: str, params: list | None = None) -> pa.Table:
        try:
            self.prepare(query)
            relation = self.con.sql(query, params=params)
            if relation is None:  # a statement (CREATE, SET, ...) returns no rows
                return pa.table({})
            return _arrow(relation)
        except duckdb.Error as exc:
            raise StoreError(f"query failed: {exc}") from exc

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_FAILURE_COLUMNS = ", ".join(f'NULL::VARCHAR AS "{f.name}"' for f in FAILURE_SCHEMA)


def _table_columns(dim: int, embeddings: bool = True) -> dict[str, str]:
    if not embeddings:
        return {"key": "VARCHAR"}
    return {"key": "VARCHAR", "shard": "VARCHAR", "embedding": f"FLOAT[{dim if dim > 0 else ''}]"}


def _unreadable(parts: list[Path]) -> list[tuple[Path, Exception]]:
    """The parts whose Parquet footer cannot be read, with why."""
    bad = []
    for path in parts:
        try:
            pq.read_metadata(path)
        except FileNotFoundError:  # gone since the glob (a table being replaced): not damage
            continue
        except Exception as err:  # noqa: BLE001 - truncated, empty, not Parquet: any reason is damage
            bad.append((path, err))
    return bad


def _table_names(con: duckdb.DuckDBPyConnection, query: str) -> set[str] | None:
    """The tables and views a query names, from DuckDB's parser (never run); None when it cannot tell.
    `get_table_names` refuses a query with parameters (`?`): then the parse tree of `json_serialize_sql`."""
    try:
        return set(con.get_table_names(query))
    except duckdb.Error:
        pass
    try:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [query]).fetchall()[0][0])
    except (duckdb.Error, TypeError, ValueError):
        return None
    if not isinstance(tree, dict) or tree.get("error"):
        return None
    found, todo = set(), [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE" and isinstance(node.get("table_name"), str):
                found.add(node["table_name"])
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return found


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _arrow(relation: duckdb.DuckDBPyRelation) -> pa.Table:
    to_table = getattr(relation, "to_arrow_table", None) or relation.arrow  # duckdb 2.x / 1.x
    return to_table()


def open(root: str | Path) -> Store:  # noqa: A001 - `store.open(path)` is the public API
    return Store(root)
