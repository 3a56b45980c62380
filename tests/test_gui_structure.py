"""The GUI's architecture rules: the main window's attributes are set only in ``main_window.py``, one job
base class for the background workers, and no module of the GUI over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

REPO = Path(__file__).resolve().parent.parent
GUI = REPO / "app" / "gui"
WINDOW_MODULE = GUI / "main_window.py"
WINDOW_NAMES = {"win", "window", "main_window", "mw"}  # how the other modules name the main window
MAX_LINES = 400


def _is_window(node: ast.expr) -> bool:
    """``win`` / ``window`` or ``self.win`` / ``self._win`` / ``self.window``."""
    if isinstance(node, ast.Name):
        return node.id in WINDOW_NAMES
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr.lstrip("_") in WINDOW_NAMES
    return False


def _targets(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        out: list[ast.expr] = []
        for t in node.targets:
            out += list(t.elts) if isinstance(t, ast.Tuple | ast.List) else [t]
        return out
    if isinstance(node, ast.AugAssign | ast.AnnAssign):
        return [node.target]
    return []


def window_attribute_sets(path: Path) -> list[str]:
    """``win.x = …`` (and ``self._win.x = …``, ``setattr(win, …)``) in ``path``, as "file:line: code"."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        hits = [t for t in _targets(node) if isinstance(t, ast.Attribute) and _is_window(t.value)]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
            hits += [node] if node.args and _is_window(node.args[0]) else []
        found += [f"{path.name}:{h.lineno}: {ast.unparse(h)}" for h in hits]
    return found


def _gui_modules() -> list[Path]:
    return sorted(GUI.rglob("*.py"))


def test_the_check_sees_attribute_sets(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f(win, self):\n    win.x = 1\n    self._win.y, z = 2, 3\n    setattr(window, 'w', 4)\n"
        "    win.settings.x = 5\n    self.win_count = 6\n",
        encoding="utf-8",
    )
    hits = window_attribute_sets(bad)
    assert [h.split(": ", 1)[1] for h in hits] == ["win.x", "self._win.y", "setattr(window, 'w', 4)"]


def test_no_module_sets_main_window_attributes() -> None:
    found = [hit for p in _gui_modules() if p != WINDOW_MODULE for hit in window_attribute_sets(p)]
    assert found == [], "MainWindow attributes set outside main_window.py:\n" + "\n".join(found)


def _assigned_in_window_module() -> set[str]:
    tree = ast.parse(WINDOW_MODULE.read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "MainWindow")
    names = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    names |= {t.id for n in cls.body for t in _targets(n) if isinstance(t, ast.Name)}
    for node in ast.walk(cls):
        for t in _targets(node):
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                names.add(t.attr)
    return names


def test_window_instance_has_only_attributes_of_its_own_module(
    qtbot, tiny_mel_pack: Path, tmp_path, monkeypatch
):
    """At run time too (heads installed, model loaded): every Python attribute of the window is one that
    ``main_window.py`` assigns."""
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))
    from app.gui.main_window import MainWindow
    from app.settings import Settings

    win = MainWindow(Settings(window_s=1.0, hop_s=0.5), pack_path=str(tiny_mel_pack))
    qtbot.addWidget(win)
    try:
        qtbot.waitUntil(lambda: win.pack_info is not None, timeout=30000)
        assert win.heads is not None and win.extensions[:2] == [win.heads, win.views]  # plugged in by hooks
        assert type(win.extensions[2]).__name__ == "PacksFeature"  # the Model menu (app.gui.packs)
        # PySide caches bound signals (class attributes) in the instance dict: those are not set by anyone
        own = {n for n in vars(win) if not n.startswith("__") and not hasattr(type(win), n)}
        assert {"ui", "menus", "files", "live", "painter", "worker", "heads"} <= own
        extra = own - _assigned_in_window_module()
        assert extra == set(), f"attributes set on MainWindow from elsewhere: {sorted(extra)}"
    finally:
        win.shutdown()


def test_one_job_base_for_the_gui_workers() -> None:
    from app.gui import jobs

    subclasses = {cls.__name__ for cls in _all_subclasses(jobs.JobRunner)}
    assert {"InferenceWorker", "HeadJobRunner"} <= subclasses
    for path in _gui_modules():
        src = path.read_text(encoding="utf-8")
        assert "processEvents" not in src, f"{path}: worker threads never pump the Qt event loop"
        if path.name != "jobs.py":
            assert 'startswith("error' not in src, f"{path}: job outcomes are a JobStatus, not strings"


def _all_subclasses(cls: type) -> set[type]:
    out = set(cls.__subclasses__())
    for sub in list(out):
        out |= _all_subclasses(sub)
    return out


def test_gui_modules_and_their_tests_are_small() -> None:
    files = _gui_modules() + sorted((REPO / "tests").glob("test_gui*.py"))
    big = [
        f"{p.relative_to(REPO)}: {n}"
        for p in files
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert big == [], f"modules over {MAX_LINES} lines: {big}"


def test_closing_the_window_stops_the_heads_through_the_hook(
    qtbot, tiny_mel_pack: Path, tmp_path, monkeypatch
):
    """``closeEvent`` calls the heads' ``window_closing``: a recording in progress stops with the window."""
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))
    import numpy as np

    from app.audio_input import SyntheticSource
    from app.gui.main_window import MainWindow
    from app.settings import Settings

    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    made: list[SyntheticSource] = []

    def factory() -> SyntheticSource:
        made.append(SyntheticSource(tone, 16000, 512, loop=True))
        return made[-1]

    win = MainWindow(Settings(window_s=1.0, hop_s=0.5), pack_path=str(tiny_mel_pack), source_factory=factory)
    qtbot.addWidget(win)
    dlg = win.heads.dialog
    assert dlg.new_head("h", ("a",)) and dlg.record("a", 60.0) and dlg.recorder.active
    win.close()
    assert not dlg.recorder.active and made[0].done.wait(5)
