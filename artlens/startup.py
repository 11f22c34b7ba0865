"""What an artlens process does before its heavy imports, so that start-up costs only what the command uses.

`import open_clip` imports torchvision, and torchvision imports `torch._dynamo` (torchvision/ops/roi_align.py
takes `is_compile_supported` from it at import time), which pulls in sympy and torch.fx's symbolic shapes. On
the H200 machine that is 5.2 of open_clip's 14.5 s of import (`python -X importtime -c "import open_clip"`,
2026-12-03); artlens never compiles anything. And open_clip imports timm and transformers whenever they are
installed (4.3 s more there, scikit-learn included) although a plain ViT uses neither.

* `install()` (run by `import artlens`): while torchvision's own package executes, `torch._dynamo` and
  `torch._dynamo.utils` are stand-ins. `is_compile_supported` asks the real function when it is called; any
  other name asked of a stand-in imports the real module there and then and answers from it, so nothing
  breaks, it is only slower. The stand-ins are gone once torchvision is imported; `import torch._dynamo`
  afterwards is the real one. Nothing is done when torch._dynamo is already imported, and nothing at all
  with ARTLENS_PLAIN_IMPORTS=1.
* `leave_out(names)`: those packages cannot be imported in this process (ModuleNotFoundError, which open_clip
  expects of an optional package), nor in the processes it starts (ARTLENS_LEAVE_OUT, read by `install`
  when they import artlens: `--devices` processes, the workers of a local Ray the command starts). Only the
  CLI calls it, for a command whose models are all known not to need them (pipeline/models/modelconfig.py
  `packages_needed`): a Python session may load any model later. `children_leave_out` does the same for the
  processes started inside it alone: the `--devices` engine, whose processes serve one config, uses it.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import os
import sys
import types

DYNAMO = "torch._dynamo"
PLAIN = "ARTLENS_PLAIN_IMPORTS"  # set to 1: import everything the usual way
LEFT_OUT = "ARTLENS_LEAVE_OUT"   # packages left out, comma-separated: set by `leave_out` for child processes
#: True in a process that runs one `artlens` command (set by the CLI's main when it reads the command line):
#: its age when the work starts is its start-up, which the extraction's summary reports (a Python session's,
#: or a test's calling main(argv), is not), and only then does `artlens extract` leave packages out
COMMAND_PROCESS = False


def plain() -> bool:
    return os.environ.get(PLAIN, "").strip().lower() not in {"", "0", "false", "no", "off"}


# -------------------------------------------------------------------------- torchvision without torch._dynamo
class _StandIn(types.ModuleType):
    """torch._dynamo or torch._dynamo.utils while torchvision executes: any name but the one torchvision takes
    at import time comes from the real module, imported on that first use."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if self.__name__ == f"{DYNAMO}.utils" and name == "is_compile_supported":
            return is_compile_supported
        return getattr(_real(self.__name__), name)


def is_compile_supported(device_type):
    """torch._dynamo.utils.is_compile_supported, imported when it is first called (torchvision's roi_align)."""
    return _real(f"{DYNAMO}.utils").is_compile_supported(device_type)


def _remove_stand_ins() -> None:
    for name in (f"{DYNAMO}.utils", DYNAMO):
        if isinstance(sys.modules.get(name), _StandIn):
            del sys.modules[name]
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(torch.__dict__.get("_dynamo"), _StandIn):
        del torch._dynamo


def _real(name: str):
    _remove_stand_ins()
    return importlib.import_module(name)


class _StandInsWhileExecuting:
    """torchvision's loader, with the stand-ins in place while it executes the package."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):  # get_resource_reader, is_package, ...: the real loader's
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        if DYNAMO in sys.modules:
            return self._loader.exec_module(module)
        utils = _StandIn(f"{DYNAMO}.utils")
        dynamo = _StandIn(DYNAMO)
        dynamo.__path__ = []
        sys.modules[DYNAMO], sys.modules[f"{DYNAMO}.utils"] = dynamo, utils
        try:
            return self._loader.exec_module(module)
        finally:
            _remove_stand_ins()


class _TorchvisionFinder(importlib.abc.MetaPathFinder):
    """Finds torchvision the usual way, once, and wraps its loader."""

    def find_spec(self, name, path=None, target=None):
        if name != "torchvision":
            return None
        _uninstall(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and DYNAMO not in sys.modules:
            spec.loader = _StandInsWhileExecuting(spec.loader)
        return spec


def _uninstall(finder) -> None:
    if finder in sys.meta_path:
        sys.meta_path.remove(finder)


def install() -> None:
    """Import torchvision without torch._dynamo when it is first imported (nothing if it already is), and
    leave out the packages a parent artlens process left out (ARTLENS_LEAVE_OUT)."""
    if plain():
        return
    if os.environ.get(LEFT_OUT):
        leave_out(os.environ[LEFT_OUT].split(","))
    if "torchvision" in sys.modules or DYNAMO in sys.modules:
        return
    if not any(isinstance(f, _TorchvisionFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchvisionFinder())


# ------------------------------------------------------------------------------ packages a command does not need
class _LeftOut(importlib.abc.MetaPathFinder):
    def __init__(self, names: frozenset[str]):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.split(".", 1)[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r} (left out by artlens: this command does not use "
                                      f"it; {PLAIN}=1 imports it)", name=name)
        return None


def leave_out(names) -> list[str]:
    """Make these top-level packages unimportable in this process, those not imported yet; returns them."""
    if plain():
        return []
    names = frozenset(n.strip() for n in names if n.strip() and n.strip() not in sys.modules)
    if names and not any(isinstance(f, _LeftOut) and f.names >= names for f in sys.meta_path):
        sys.meta_path.insert(0, _LeftOut(names))
        os.environ[LEFT_OUT] = ",".join(sorted(names | set(filter(None, os.environ.get(LEFT_OUT, "").split(",")))))
    return sorted(names)


@contextlib.contextmanager
def children_leave_out(names):
    """Processes started inside leave these packages out too (ARTLENS_LEAVE_OUT, read by `install` when the
    child imports artlens): for an engine whose processes serve one config (`--devices`)."""
    before = os.environ.get(LEFT_OUT)
    names = set(names) | set(filter(None, (before or "").split(",")))
    if plain() or not names:
        yield
        return
    os.environ[LEFT_OUT] = ",".join(sorted(names))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(LEFT_OUT, None)
        else:
            os.environ[LEFT_OUT] = before
