"""``models`` (every module) and the Qt-free parts of ``app`` (including every module of the GUI's
state package ``app.gui.state``) import without PySide6."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import app.gui.state
import models

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_QT_FREE = ("app.cli", "app.export", "app.audio_input", "app.settings", "app.paths")


def _module_names() -> list[str]:
    names = ["models"]
    for info in pkgutil.walk_packages(models.__path__, prefix="models."):
        names.append(info.name)
    for info in pkgutil.walk_packages(app.gui.state.__path__, prefix="app.gui.state."):
        names.append(info.name)
    names.append("app.gui.state")
    for name in APP_QT_FREE:
        if (REPO_ROOT / (name.replace(".", "/") + ".py")).is_file():
            names.append(name)
    return sorted(names)


def test_models_and_app_core_import_without_qt() -> None:
    names = _module_names()
    assert "models.tagging.engine" in names and "models.hear" in names and "models.packs.pack" in names
    gui_state = {
        "app.gui.state.series",
        "app.gui.state.trajectory",
        "app.gui.state.live",
        "app.gui.state.heads",
    }
    assert gui_state <= set(names)
    script = (
        "import importlib, json, sys\n"
        f"names = {names!r}\n"
        "failed = {}\n"
        "for n in names:\n"
        "    try:\n"
        "        importlib.import_module(n)\n"
        "    except Exception as exc:\n"
        "        failed[n] = repr(exc)\n"
        "qt = sorted(m for m in sys.modules if m == 'PySide6' or m.startswith(('PySide6.', 'shiboken6')))\n"
        "print(json.dumps({'failed': failed, 'qt': qt}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}, result["failed"]
    assert result["qt"] == [], f"PySide6 imported by {names}: {result['qt']}"
