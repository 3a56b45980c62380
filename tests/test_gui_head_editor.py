"""The Heads dialog's Qt-free controller (``app.gui.state.head_editor.HeadEditor``), without a display."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from app.gui.state import heads as logic
from app.gui.state.head_editor import HeadEditor, audio_dir
from models.heads.head_store import HeadStore
from models.heads.heads import BACKGROUND


def _editor(root: Path, pack: Any = None) -> tuple[HeadEditor, list[tuple[str, bool]], list[Any]]:
    notes: list[tuple[str, bool]] = []
    remembered: list[Any] = []
    ed = HeadEditor(
        HeadStore(root),
        lambda: pack,
        lambda text, error: notes.append((text, error)),
        lambda head, name: None,
        remembered.append,
    )
    return ed, notes, remembered


def test_make_edit_rename_and_delete_heads(tmp_path: Path) -> None:
    pack = SimpleNamespace(pack_id="p" * 64, embedding_layout=[("emb", 4)])
    ed, notes, _ = _editor(tmp_path / "heads", pack)
    assert ed.new_head("door/bell") is False and notes[-1][1]  # names are checked
    assert ed.new_head("doorbell", ("ring",)) and ed.current == "doorbell"
    assert ed.entries["doorbell"].draft and ed.examples.classes == ("ring",)
    assert ed.new_head("doorbell") is False and "already exists" in notes[-1][0]
    assert ed.edit(logic.add_class, "ring") is False and "already exists" in notes[-1][0]
    assert ed.add_background() and ed.examples.classes == ("ring", BACKGROUND)
    emb = np.ones((3, 4), np.float32)
    assert ed.add_examples("ring", emb, "span")
    assert ed.examples.counts()["ring"] == 3
    assert ed.store.load_examples("doorbell").counts()["ring"] == 3  # saved at once
    audio_dir(ed.store, "doorbell").mkdir()
    assert ed.rename_head("doorbell", "bell") and ed.current == "bell"
    assert audio_dir(ed.store, "bell").is_dir() and set(ed.entries) == {"bell"}
    ed.delete_head("bell")
    assert ed.entries == {} and ed.current is None and not audio_dir(ed.store, "bell").exists()
    ed.delete_head("bell")  # gone already: the store's HeadError is a notice, never an exception
    assert "no head named 'bell'" in notes[-1][0] and notes[-1][1]


def test_examples_need_a_head_and_activation_waits_for_the_model(tmp_path: Path) -> None:
    ed, notes, remembered = _editor(tmp_path / "heads", pack=None)
    assert ed.add_examples("x", np.ones((1, 4), np.float32)) is False
    assert notes[-1] == ("Choose or make a head first (Heads ▸ Manage heads…).", True)
    assert ed.new_head("h")
    assert ed.activate("h") is False and ed.active is None
    assert ed.wanted_head == str(ed.store.path("h")) and remembered == []
    assert ed.activate(None) and ed.active_name is None and remembered == [None]
