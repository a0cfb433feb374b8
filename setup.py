"""Build: the hot modules (`kplab._native.HOT`) are compiled with mypyc, together with a generated
`kplab/_built.py` holding the hash of their sources, unless `KPLAB_PURE=1` is set or there is no C
compiler. Everything else about the package is in pyproject.toml."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

from setuptools import setup

SRC = Path(__file__).resolve().parent / "src"


def _load_native() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kplab_native_build", SRC / "kplab" / "_native.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _have_compiler() -> bool:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None


def _ext_modules() -> list[object]:
    native = _load_native()
    if native.pure_requested():
        print("kplab: KPLAB_PURE is set: building pure Python", file=sys.stderr)
        return []
    if not _have_compiler():
        print("kplab: no C compiler found: building pure Python", file=sys.stderr)
        return []
    from mypyc.build import mypycify

    native.write_built(SRC)
    paths = [os.path.join("src", p) for p in native.hot_paths()] + [os.path.join("src", "kplab", "_built.py")]
    return list(mypycify(paths, separate=True, opt_level="2", debug_level="0"))


setup(ext_modules=_ext_modules())
