"""The layout and its import rules (docs/architecture.md): one `artlens` namespace, data flowing one way
(pipeline → store → probes), store-only probes without torch, nothing importing the CLI, every package in
pyproject, and a wheel that holds `artlens` and nothing else."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from conftest import REPO

#: source folder → the import name it is installed as (pyproject's [tool.setuptools.package-dir])
FOLDERS = {"artlens": "artlens", "pipeline": "artlens.pipeline", "store": "artlens.store",
           "probes": "artlens.probes", "explorer": "artlens.explorer", "benchmarks": "benchmarks"}

#: importer (module prefix) → the artlens modules it may import: prefixes, except "artlens", which means the
#: package root alone (its __version__; the API names it exports are lazy), and "*", anything. The first row
#: whose prefix matches the importer applies. Nothing but the CLI may import artlens.cli.
ALLOWED = [
    ("artlens.store", ("artlens.store",)),
    # saliency and guidance score images with a model: they may use the pipeline's models, imaging and texts
    ("artlens.probes.interpret", ("artlens", "artlens.errors", "artlens.store", "artlens.probes", "artlens.pipeline")),
    ("artlens.probes", ("artlens.errors", "artlens.store", "artlens.probes")),
    ("artlens.pipeline", ("artlens", "artlens.errors", "artlens.startup", "artlens.store", "artlens.pipeline")),
    ("artlens.cli", ("*",)),
    # the web explorer serves the store, the API (text and image queries), the probes' maps; never the CLI
    ("artlens.explorer", ("artlens", "artlens.api", "artlens.errors", "artlens.store", "artlens.probes",
                          "artlens.explorer")),
    ("artlens.__main__", ("artlens.cli",)),
    ("artlens.startup", ("artlens.startup",)),  # runs before every heavy import: nothing else of artlens
    ("artlens", ("artlens.errors", "artlens.startup", "artlens.store", "artlens.pipeline", "artlens.probes",
                 "artlens.api")),
    ("benchmarks", ("artlens", "artlens.store", "artlens.pipeline", "artlens.errors", "benchmarks")),
]
#: store-only probes must not load these (importing torch and open_clip takes seconds)
HEAVY = ("torch", "open_clip", "torchvision")


def _modules() -> dict[str, Path]:
    found = {}
    for folder, name in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join((name, *parts))] = path
    return found


MODULES = _modules()


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import; `from X import y` counts as X.y when that is a module."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                out.append((node.lineno, "." * node.level + (node.module or "")))
                continue
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.append((node.lineno, sub if sub in MODULES else node.module))
    return out


def _is_under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _ours(name: str) -> bool:
    return name.split(".")[0] in ("artlens", "pipeline", "store", "probes", "explorer", "benchmarks")


def _rule(module: str) -> tuple[str, ...]:
    return next(allowed for prefix, allowed in ALLOWED if _is_under(module, prefix))


def _allowed(name: str, allowed: tuple[str, ...]) -> bool:
    return any(a == "*" or (name == a if a == "artlens" else _is_under(name, a)) for a in allowed)


def test_the_rules_table_covers_every_module():
    assert len(MODULES) > 80
    for module in MODULES:
        assert _rule(module), module


def test_imports_follow_the_layers():
    bad = []
    for module, path in MODULES.items():
        allowed = _rule(module)
        for line, name in _imports(path, module):
            where = f"{path.relative_to(REPO)}:{line} imports {name}"
            if name.startswith("."):
                bad.append(f"{where} (relative: write the absolute artlens name)")
            elif name.split(".")[0] in ("pipeline", "store", "probes", "explorer"):
                bad.append(f"{where} (a top-level design folder: import it as artlens.{name})")
            elif _ours(name) and not _allowed(name, allowed):
                bad.append(f"{where} (allowed: {', '.join(allowed)})")
    assert bad == []


def test_the_layer_check_catches_forbidden_imports(tmp_path):
    """The rules would refuse a store module importing the pipeline or the package root, a store-only probe
    importing a model loader, the pipeline importing a probe, and anything but the CLI importing the CLI."""
    path = tmp_path / "m.py"
    path.write_text("from artlens.pipeline.models.load import load_model\nimport artlens.cli.main\n")
    assert [n for _, n in _imports(path, "artlens.store.m")] == ["artlens.pipeline.models.load", "artlens.cli.main"]
    for importer, name in (("artlens.store.query", "artlens.pipeline.models.load"), ("artlens.store.query", "artlens"),
                           ("artlens.probes.linear", "artlens.pipeline.texts"),
                           ("artlens.pipeline.perturb.run", "artlens.probes.result"),
                           ("artlens.probes.interpret.guide", "artlens.cli.output"), ("artlens.api", "artlens.cli.main")):
        assert not _allowed(name, _rule(importer)), (importer, name)
    assert _allowed("artlens", _rule("artlens.pipeline.texts"))  # __version__


def _fresh_modules(code: str) -> list[str]:
    run = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, cwd="/", timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.split()


def test_store_only_probes_and_the_report_load_no_torch():
    store_only = [m for m, p in MODULES.items() if _is_under(m, "artlens.probes")
                  and not _is_under(m, "artlens.probes.interpret")]
    loaded = _fresh_modules("\n".join(f"import {m}" for m in store_only))
    assert "artlens.probes.zero_shot" in loaded and "artlens.probes.report.build" in loaded
    assert [m for m in HEAVY if m in loaded] == []


def test_import_artlens_is_cheap_and_its_api_names_resolve():
    loaded = _fresh_modules("import artlens")
    assert [m for m in (*HEAVY, "duckdb", "faiss", "artlens.cli") if m in loaded] == []
    import artlens

    for name in artlens.__all__:
        assert getattr(artlens, name) is not None, name
    with pytest.raises(AttributeError):
        artlens.no_such_name  # noqa: B018


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_in_pyproject_under_its_artlens_name():
    setuptools = _pyproject()["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"artlens": "artlens", "artlens.pipeline": "pipeline",
                                         "artlens.store": "store", "artlens.probes": "probes",
                                         "artlens.explorer": "explorer"}
    folders = {m for m, p in MODULES.items() if p.name == "__init__.py" and not m.startswith("benchmarks")}
    assert sorted(setuptools["packages"]) == sorted(folders)


def test_one_entry_point_and_one_version():
    project = _pyproject()["project"]
    assert project["scripts"] == {"artlens": "artlens.cli.main:main"}
    assert "version" not in project and project["dynamic"] == ["version"]
    import importlib.metadata

    import artlens

    assert importlib.metadata.version("artlens") == artlens.__version__
    assert "__version__" not in (REPO / "pipeline" / "__init__.py").read_text()


def _source_copy(dest: Path) -> Path:
    """The files git would check out (tracked and untracked-but-not-ignored), as a clean clone has them."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


@pytest.mark.slow
def test_a_normal_install_holds_artlens_alone_and_runs_from_anywhere(tmp_path):
    source = _source_copy(tmp_path / "src")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next((tmp_path / "dist").glob("artlens-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"artlens", wheel.name.split("-py")[0] + ".dist-info"}
    for shipped in ("artlens/pipeline/extract/run.py", "artlens/store/query.py", "artlens/probes/zero_shot.py",
                    "artlens/probes/suites/sample.yaml", "artlens/pipeline/perturb/suites/default.yaml",
                    "artlens/pipeline/prompts/sample-style.yaml", "artlens/cli/main.py"):
        assert shipped in names
    assert not [n for n in names if "benchmarks" in n or "/tests/" in n]

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = "import artlens.pipeline.extract.run as m, artlens.probes.zero_shot as z; print(m.__file__, z.__file__)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert all(path.startswith(str(site)) for path in run.stdout.split())
    version = subprocess.run([sys.executable, "-m", "artlens", "--version"], capture_output=True, text=True,
                             cwd=tmp_path, env=env)
    assert version.returncode == 0 and version.stdout.strip().startswith("artlens ")
