"""SPEC → list of shard URLs: a directory of .tar files, a brace pattern, a list file, or one .tar."""
from __future__ import annotations

import glob
import os
from pathlib import Path

import braceexpand
import fsspec

from artlens.errors import UserError


class ShardSpecError(UserError):
    """A shards SPEC that names no shards, or shards that do not exist."""


def _from_list_file(path: Path) -> list[str]:
    base = path.parent
    urls = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            urls.append(line if "://" in line or os.path.isabs(line) else str(base / line))
    return urls


TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def _from_url(spec: str) -> list[str]:
    """An fsspec URL: a glob (s3://b/shards/*.tar) or a prefix holding .tar files (s3://b/shards/)."""
    fs, path = fsspec.core.url_to_fs(spec)
    protocol = spec.split("://", 1)[0]
    if any(ch in path for ch in "*?["):
        found = fs.glob(path)
    else:
        found = [p for p in fs.ls(path, detail=False) if p.endswith(TAR_SUFFIXES)]
    return sorted(f"{protocol}://{p.lstrip('/')}" if protocol != "file" else f"file://{p}" for p in found)


def expand_shards(spec: str) -> list[str]:
    """Resolve SPEC to shard URLs (sorted for directories; in given order for patterns and lists)."""
    path = Path(spec)
    if "://" in spec and "{" not in spec and (any(ch in spec for ch in "*?[") or not spec.endswith(TAR_SUFFIXES)):
        urls = _from_url(spec)
    elif "://" not in spec and path.is_dir():
        urls = sorted(str(p) for p in path.iterdir() if p.name.endswith((".tar", ".tar.gz", ".tgz")))
    elif "{" in spec:
        urls = list(braceexpand.braceexpand(spec))
    elif any(ch in spec for ch in "*?[") and "://" not in spec:
        urls = sorted(glob.glob(spec))
    elif "://" not in spec and path.is_file() and not spec.endswith((".tar", ".tar.gz", ".tgz")):
        urls = _from_list_file(path)
    else:
        urls = [spec]
    if not urls:
        raise ShardSpecError(f"no shards found for {spec!r} (a directory of .tar files, a brace pattern "
                             "like data/{00000..00009}.tar, a glob, or a text file listing shards)")
    local_missing = [u for u in urls if "://" not in u and not os.path.exists(u)]
    if local_missing:
        raise ShardSpecError(f"{len(local_missing)} shard(s) of {spec!r} do not exist, e.g. {local_missing[0]}")
    # absolute local paths: a shard's identity (and so resume) must not depend on the working directory
    return [u if "://" in u else os.path.abspath(u) for u in urls]


def open_shard(url: str):
    """A binary file object for a shard: a local path or any fsspec URL (s3://, gs://, file://)."""
    if "://" in url:
        return fsspec.open(url, "rb").open()
    return open(url, "rb")
