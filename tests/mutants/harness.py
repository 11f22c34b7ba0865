"""`make mutants`: apply each curated mutation of tests/mutants/mutations.yaml to a scratch copy of the
repository, run the tests the mutation names, and say which mutations the tests killed.

    python tests/mutants/harness.py [--only ID ...] [--list] [--keep] [--timeout S] [--no-baseline]

The working tree is never edited. Each mutant runs in its own copy of the files git would check out (tracked
and untracked-but-not-ignored) under build/mutants/trees/<id>/. The editable install maps `artlens` to the
checkout, so the copy is made importable in its place: build/mutants/shim/sitecustomize.py puts a finder at
the front of sys.meta_path that maps the names of pyproject's [tool.setuptools.package-dir] to the copy
named by $ARTLENS_MUTANT_ROOT. The shim is on PYTHONPATH, so the `python -m artlens` / `artlens` processes the
tests start import the copy too (checked in a grandchild before the first mutant). The tests' shared data
(REPO.parent/shared) is linked beside the copies.

First the tests of every selected mutation run on an unmutated copy: they must pass ("baseline failure"
otherwise, and no mutant runs). Then per mutant: the mutated module must import from the copy, and pytest
(-x, CI unset, so a skip stays a skip) must fail: exit 1 is "killed", 0 "survived", anything else (a
collection error, a timeout, every test skipped) an "error". The exit status is 0 only when every mutant
was killed; 2 for a stale mutation, a bad mutations file or a baseline failure. Logs: build/mutants/logs/.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
MUTATIONS = Path(__file__).with_name("mutations.yaml")
FIELDS = ("id", "what", "file", "find", "replace", "tests")
ID = re.compile(r"[a-z0-9][a-z0-9-]*")
BASELINE = "baseline"
ROOT_ENV = "ARTLENS_MUTANT_ROOT"
#: modules whose files must lie in the copy, imported in a child and a grandchild of the harness
CHECKED = ("artlens", "artlens.cli.main", "artlens.pipeline.failures", "artlens.store.writer",
           "artlens.probes.stats")


class MutationError(Exception):
    """A mutations file that cannot be used as it is: a stale `find`, a missing file, a bad entry."""


@dataclass(frozen=True)
class Mutation:
    id: str
    what: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]


@dataclass
class Outcome:
    result: str          # killed, survived, error
    note: str            # the first failing test when killed, else why
    seconds: float


# --------------------------------------------------------------------------------------- mutations
def load_mutations(path: Path = MUTATIONS, repo: Path = REPO) -> list[Mutation]:
    entries = yaml.safe_load(path.read_text())
    if not isinstance(entries, list) or not entries:
        raise MutationError(f"{path}: expected a list of mutations")
    out, seen = [], set()
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or set(entry) != set(FIELDS):
            raise MutationError(f"{path}: entry {n} must have exactly the fields {', '.join(FIELDS)}")
        if not all(isinstance(entry[k], str) and entry[k] for k in FIELDS[:-1]):
            raise MutationError(f"{path}: entry {n}: {', '.join(FIELDS[:-1])} must be non-empty strings")
        tests = entry["tests"]
        if not isinstance(tests, list) or not tests or not all(isinstance(t, str) and t for t in tests):
            raise MutationError(f"{path}: entry {n} ({entry['id']}): tests must be a non-empty list of node ids")
        m = Mutation(**{**entry, "tests": tuple(tests)})
        if not ID.fullmatch(m.id) or m.id == BASELINE or m.id in seen:
            raise MutationError(f"{path}: bad or repeated id {m.id!r}")
        seen.add(m.id)
        if m.find == m.replace:
            raise MutationError(f"{m.id}: find and replace are the same")
        for test in m.tests:
            if not (repo / test.split("::")[0]).is_file():
                raise MutationError(f"{m.id}: no test file {test.split('::')[0]}")
        out.append(m)
    return out


def _pattern(find: str) -> re.Pattern:
    """One line: the snippet anywhere. Several lines: from the start of a line, at any indentation that all
    its lines share (blank lines match any whitespace)."""
    lines = textwrap.dedent(find).split("\n")
    if len(lines) == 1:
        return re.compile(re.escape(lines[0]))
    rest = "".join(r"\n(?P=indent)" + re.escape(line) if line.strip() else r"\n[ \t]*" for line in lines[1:])
    return re.compile(r"^(?P<indent>[ \t]*)" + re.escape(lines[0]) + rest, re.MULTILINE)


def mutate(text: str, m: Mutation) -> str:
    """`text` with the mutation's snippet replaced; MutationError unless it occurs exactly once."""
    matches = list(_pattern(m.find).finditer(text))
    if len(matches) != 1:
        raise MutationError(f"{m.id}: its `find` occurs {len(matches)} times in {m.file} (must be once): "
                            "the code changed; update tests/mutants/mutations.yaml")
    match = matches[0]
    start = text.rfind("\n", 0, match.start()) + 1
    indent = re.match(r"[ \t]*", text[start:]).group()
    first, *rest = textwrap.dedent(m.replace).split("\n")
    body = "\n".join([first] + [indent + line if line.strip() else "" for line in rest])
    if "indent" in match.groupdict():  # a snippet of several lines: its match began with the indentation
        body = indent + body
    return text[:match.start()] + body + text[match.end():]


def mutated_source(m: Mutation, repo: Path = REPO) -> str:
    path = repo / m.file
    if not path.is_file():
        raise MutationError(f"{m.id}: no file {m.file}")
    return mutate(path.read_text(), m)


# ---------------------------------------------------------------------------------- the scratch copy
def source_files(repo: Path = REPO) -> list[str]:
    """The files a clean clone would have, plus untracked files that are not ignored."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=repo,
                         capture_output=True, check=True).stdout.decode()
    return [name for name in out.split("\0") if name and (repo / name).is_file()]


def make_copy(dest: Path, repo: Path = REPO, files: list[str] | None = None) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    for name in files if files is not None else source_files(repo):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, dest / name)
    return dest


def package_dirs(repo: Path = REPO) -> dict[str, str]:
    """Import name → folder (relative to the repository) of pyproject's [tool.setuptools.package-dir]."""
    return dict(tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"])


SHIM = '''"""Written by tests/mutants/harness.py (make mutants): imports of {top!r} come from the copy named by
${env}, never from the checkout the editable install points at. Any other sitecustomize runs after this."""
import os
import sys
from importlib.machinery import PathFinder
from importlib.util import module_from_spec, spec_from_file_location

PACKAGES = {packages!r}


class MutantFinder:
    root = os.environ.get({env!r}, "")

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if not cls.root:
            return None
        if fullname in PACKAGES:
            folder = os.path.join(cls.root, PACKAGES[fullname])
            return spec_from_file_location(fullname, os.path.join(folder, "__init__.py"),
                                           submodule_search_locations=[folder])
        if fullname.startswith({top!r} + ".") and path is not None:
            spec = PathFinder.find_spec(fullname, path)  # path: the parent's __path__, inside the copy
            if spec is None:  # never fall through to the editable install's finder
                raise ModuleNotFoundError(f"No module named {{fullname!r}} in {{cls.root}}", name=fullname)
            return spec
        return None

    @classmethod
    def invalidate_caches(cls):
        pass


sys.meta_path.insert(0, MutantFinder)

_here = os.path.dirname(os.path.abspath(__file__))
_other = PathFinder.find_spec("sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != _here])
if _other is not None and _other.loader is not None:
    _module = module_from_spec(_other)
    _other.loader.exec_module(_module)
'''


def write_shim(folder: Path, repo: Path = REPO) -> Path:
    packages = package_dirs(repo)
    top = min(packages, key=len)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SHIM.format(packages=packages, top=top, env=ROOT_ENV))
    return folder


def child_env(shim: Path, copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(shim), *filter(None, [env.get("PYTHONPATH")])])
    env[ROOT_ENV] = str(copy)
    env["CI"] = ""                      # tests/conftest.py: under CI a skip is a failure, which is no kill
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutant and its original may share mtime and size
    env.pop("PYTEST_ADDOPTS", None)
    return env


def module_name(file: str, repo: Path = REPO) -> str | None:
    """The import name of a repository file under a package-dir folder (None for tests, benchmarks, ...)."""
    path = Path(file).with_suffix("")
    for name, folder in sorted(package_dirs(repo).items(), key=lambda kv: -len(kv[1])):
        folder_parts = Path(folder).parts
        if path.parts[:len(folder_parts)] == folder_parts:
            rest = path.parts[len(folder_parts):]
            rest = rest[:-1] if rest and rest[-1] == "__init__" else rest
            return ".".join((name, *rest))
    return None


IMPORT_CHECK = """
import importlib, json, subprocess, sys
found = {m: importlib.import_module(m).__file__ for m in sys.argv[2:]}
if sys.argv[1] == "deep":  # a process started by a test (python -m artlens, faultkit) imports the copy too
    code = "import artlens.probes, artlens.store; print(artlens.probes.__file__, artlens.store.__file__)"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    found.update(zip(("child: artlens.probes", "child: artlens.store"), child.stdout.split()))
print(json.dumps(found))
"""


def import_check(copy: Path, env: dict, modules: list[str], deep: bool = False) -> str | None:
    """None when every module imports, from the copy; else what went wrong."""
    run = subprocess.run([sys.executable, "-c", IMPORT_CHECK, "deep" if deep else "flat", *modules], cwd="/",
                         env=env, capture_output=True, text=True, timeout=300, check=False)
    if run.returncode != 0:
        return f"does not import: {(run.stderr.strip().splitlines() or ['?'])[-1]}"
    for name, file in json.loads(run.stdout.splitlines()[-1]).items():
        if not Path(file).resolve().is_relative_to(copy.resolve()):
            return f"{name} was imported from {file}, not from the copy {copy}"
    return None


# ------------------------------------------------------------------------------------------ pytest
SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")


def run_pytest(copy: Path, tests: tuple[str, ...], env: dict, timeout: float, basetemp: Path,
               log: Path) -> tuple[int | None, str]:
    """(pytest's exit code, None on timeout; its output), the output also written to `log`."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--basetemp", str(basetemp),
           *tests]
    basetemp.parent.mkdir(parents=True, exist_ok=True)  # pytest makes --basetemp, not its parents
    proc = subprocess.Popen(cmd, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # pytest and what it started (its own session)
        output, _ = proc.communicate()
        code = None
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"$ cd {copy} && {' '.join(cmd)}\n\n{output}")
    return code, output


def counts(output: str) -> dict[str, int]:
    lines = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed|skipped|errors?)", line)]
    found = {}
    for n, what in SUMMARY.findall(lines[-1] if lines else ""):
        found["error" if what.startswith("error") else what] = int(n)
    return found


def first_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" ", 1)[1].split(" - ", 1)[0]
    return "(no FAILED line)"


def judge(code: int | None, output: str, timeout: float) -> tuple[str, str]:
    """(killed | survived | error, note) of one pytest run over a mutant."""
    if code is None:
        return "error", f"timeout after {timeout:.0f} s"
    seen = counts(output)
    if code == 1:
        return "killed", first_failure(output)
    if code == 0:
        if not seen.get("passed"):
            return "error", f"no test ran ({seen.get('skipped', 0)} skipped)"
        skipped = seen.get("skipped", 0)
        return "survived", f"{seen['passed']} passed" + (f", {skipped} skipped" if skipped else "")
    why = {2: "interrupted (a collection error?)", 3: "pytest internal error", 4: "usage error",
           5: "no tests collected"}.get(code, "")
    return "error", f"pytest exit {code} {why}".strip()


# -------------------------------------------------------------------------------------------- runs
@dataclass
class Scratch:
    root: Path
    files: list[str]
    shim: Path

    @classmethod
    def prepare(cls, root: Path, repo: Path = REPO) -> Scratch:
        trees = root / "trees"
        trees.mkdir(parents=True, exist_ok=True)
        shared, link = repo.parent / "shared", trees / "shared"  # tests/conftest.py: REPO.parent/shared/data
        if link.is_symlink() or link.exists():
            link.unlink()
        if shared.exists():
            link.symlink_to(shared.resolve(), target_is_directory=True)
        return cls(root, source_files(repo), write_shim(root / "shim", repo))

    def tree(self, name: str, repo: Path = REPO) -> Path:
        return make_copy(self.root / "trees" / name, repo, self.files)

    def clean(self, name: str) -> None:
        for path in (self.root / "trees" / name, self.root / "tmp" / name):
            shutil.rmtree(path, ignore_errors=True)


def baseline(scratch: Scratch, mutations: list[Mutation], timeout: float, keep: bool) -> str | None:
    """None when the selected mutations' tests pass on an unmutated copy that imports as `artlens`."""
    copy = scratch.tree(BASELINE)
    env = child_env(scratch.shim, copy)
    try:
        problem = import_check(copy, env, list(CHECKED), deep=True)
        if problem:
            return f"the unmutated copy: {problem}"
        tests = tuple(dict.fromkeys(t for m in mutations for t in m.tests))
        log = scratch.root / "logs" / f"{BASELINE}.log"
        code, output = run_pytest(copy, tests, env, timeout * len(mutations), scratch.root / "tmp" / BASELINE, log)
        seen = counts(output)
        if code != 0:
            return f"baseline failure: the tests fail on the unmutated copy (pytest exit {code}; {log})"
        if seen.get("skipped"):
            print(f"note: {seen['skipped']} of the selected tests skip on the unmutated copy (they kill nothing; "
                  f"{log})")
        return None
    finally:
        if not keep:
            scratch.clean(BASELINE)


def run_mutant(scratch: Scratch, m: Mutation, timeout: float, keep: bool) -> Outcome:
    start = time.perf_counter()
    copy = scratch.tree(m.id)
    try:
        (copy / m.file).write_text(mutated_source(m))
        env = child_env(scratch.shim, copy)
        module = module_name(m.file)
        problem = import_check(copy, env, [module]) if module else None
        if problem:
            return Outcome("error", f"the mutant {problem}", time.perf_counter() - start)
        code, output = run_pytest(copy, m.tests, env, timeout, scratch.root / "tmp" / m.id,
                                  scratch.root / "logs" / f"{m.id}.log")
        return Outcome(*judge(code, output, timeout), time.perf_counter() - start)
    finally:
        if not keep:
            scratch.clean(m.id)


def table(rows: list[tuple[Mutation, Outcome]]) -> str:
    width = max(len(m.id) for m, _ in rows), max(len(m.file) for m, _ in rows)
    head = ("mutation", "file", "result", "time", "first failing test / note")
    lines = [f"{head[0]:<{width[0]}}  {head[1]:<{width[1]}}  {head[2]:<8}  {head[3]:>6}  {head[4]}"]
    for m, o in rows:
        lines.append(f"{m.id:<{width[0]}}  {m.file:<{width[1]}}  {o.result:<8}  {o.seconds:5.1f}s  {o.note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make mutants", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="ID", help="run this mutation (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutations, check each applies, run nothing")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies under build/mutants/trees/")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per mutant (default 300)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run on the unmutated copy")
    parser.add_argument("--scratch", type=Path, default=REPO / "build" / "mutants", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        mutations = load_mutations()
        unknown = sorted(set(args.only) - {m.id for m in mutations})
        if unknown:
            raise MutationError(f"no mutation {', '.join(unknown)} (see --list)")
        selected = [m for m in mutations if not args.only or m.id in args.only]
        for m in selected:
            mutated_source(m)  # every snippet occurs exactly once, before anything runs
    except MutationError as exc:
        print(f"make mutants: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for m in selected:
            print(f"{m.id}  ({m.file})\n    {m.what}\n    tests: {' '.join(m.tests)}")
        return 0

    started = time.perf_counter()
    scratch = Scratch.prepare(args.scratch)
    if not args.no_baseline:
        print(f"baseline: the tests of {len(selected)} mutation(s) on an unmutated copy ...", flush=True)
        problem = baseline(scratch, selected, args.timeout, args.keep)
        if problem:
            print(f"make mutants: {problem}", file=sys.stderr)
            return 2
        print(f"baseline: passed ({time.perf_counter() - started:.0f} s)", flush=True)
    rows = []
    for n, m in enumerate(selected, 1):
        outcome = run_mutant(scratch, m, args.timeout, args.keep)
        rows.append((m, outcome))
        print(f"[{n:>2}/{len(selected)}] {outcome.result:<8} {m.id} ({outcome.seconds:.1f} s): {outcome.note}",
              flush=True)
    killed = sum(o.result == "killed" for _, o in rows)
    print("\n" + table(rows))
    print(f"\nscore: {killed} of {len(rows)} mutants killed ({100 * killed / len(rows):.0f}%), "
          f"{time.perf_counter() - started:.0f} s; logs in {scratch.root / 'logs'}")
    for m, o in rows:
        if o.result != "killed":
            print(f"  {o.result}: {m.id}: {m.what} (log: {scratch.root / 'logs' / (m.id + '.log')})")
    return 0 if killed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
