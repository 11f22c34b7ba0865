"""The catalog's timestamps come back as aware UTC datetimes, in any local time zone, without pandas (whose
import cost `artlens extract` 0.3-0.4 s of start-up when Arrow converted time-zoned timestamps through it)."""
import json
import os
import subprocess
import sys

from conftest import REPO

READ_BACK = """
import json, sys
from datetime import datetime, timezone
from artlens.store.catalog import Catalog, TableEntry
before = datetime.now(timezone.utc)
cat = Catalog(sys.argv[1])
cat.put(TableEntry(name="t", model="m", dim=4, created=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)))
entry = cat.get("t")
after = datetime.now(timezone.utc)
print(json.dumps({"pandas": "pandas" in sys.modules, "created": entry.created.isoformat(),
                  "updated_in_window": before <= entry.updated <= after,
                  "utcoffset": entry.updated.utcoffset().total_seconds()}))
"""


def test_catalog_times_are_utc_and_need_no_pandas(tmp_path):
    env = {**os.environ, "TZ": "Asia/Tokyo", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", READ_BACK, str(tmp_path / "catalog.duckdb")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {"pandas": False, "created": "2026-01-02T03:04:05.000006+00:00", "updated_in_window": True,
                   "utcoffset": 0.0}
    assert json.loads((tmp_path / "catalog.json").read_text())["tables"][0]["name"] == "t"
