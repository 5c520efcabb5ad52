"""Loaded by every pytest run in this repository, whatever paths it is given (a notebook run
on its own too): the network guard of ``tests/offline/sitecustomize.py``, in this process
and, through PYTHONPATH, in every process the run starts."""

import importlib.util
import os
from pathlib import Path

OFFLINE = Path(__file__).resolve().parent / "tests" / "offline"


def pytest_configure(config):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(OFFLINE), os.environ.get("PYTHONPATH", "")) if p)
    spec = importlib.util.spec_from_file_location("offline_guard", OFFLINE / "sitecustomize.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
