"""The Qt-free controller of the Heads dialog: the saved heads, the edited head and its example set,
and the active head.

The panels of :mod:`app.gui.heads` only show state and emit what the user asked for; the dialog passes
those requests here and redraws the panels from this object. Notices go out through
``notify(text, error)``; a change of the active head through ``activated(head, name)`` (the dialog hands
it to the inference worker and the dock); the head to re-activate at the next start through
``remember(path)``. Example sets hold embeddings, never audio (``models.heads.head_store``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.gui.state import heads as logic
from app.gui.state.heads import HeadEntry
from models.heads.head_file import load_head
from models.heads.head_store import ExamplePackError, ExampleSet, HeadStore, PackStamp, check_name
from models.heads.heads import BACKGROUND, Head, HeadError, HeadReport


def audio_dir(store: HeadStore, name: str) -> Path:
    """Folder for a head's kept raw recordings (only used when the user opts in): ``<heads>/NAME.audio``."""
    return Path(store.root) / f"{name}.audio"


class HeadEditor:
    """State and operations of the Heads dialog (see module docstring). ``pack()`` is the loaded
    ``PackInfo`` (None while loading); ``wanted_head`` the head file to activate once it is loaded."""

    def __init__(
        self,
        store: HeadStore,
        pack: Callable[[], Any],
        notify: Callable[[str, bool], None],
        activated: Callable[[Head | None, str | None], None],
        remember: Callable[[Path | None], None],
        wanted_head: str | None = None,
    ) -> None:
        self.store, self.pack = store, pack
        self.notify, self.activated, self.remember = notify, activated, remember
        self.current: str | None = None
        self.examples = ExampleSet.empty()
        self.active: Head | None = None
        self.active_name: str | None = None
        self.entries: dict[str, HeadEntry] = {}
        self.wanted_head = wanted_head
        self.last_report: HeadReport | None = None

    # --- heads ------------------------------------------------------------------------------------------
    def reload(self) -> None:
        """Re-read the heads folder; the edited head is dropped if it is gone."""
        self.entries = {e.name: e for e in logic.list_entries(self.store)}
        if self.current is not None and self.current not in self.entries:
            self.select(None)

    def select(self, name: str | None) -> None:
        """Edit head ``name`` (its example set, or its card's classes when no examples were kept)."""
        self.current, self.examples = name, ExampleSet.empty()
        if name is None:
            return
        try:
            self.examples = self.store.load_examples(name)
        except HeadError as exc:
            self.notify(str(exc), True)
        entry = self.entries.get(name)
        card = entry.card if entry else None
        note = ""
        if not len(self.examples.label) and not self.examples.classes and card is not None:
            self.examples = ExampleSet.empty(card.classes)
            note = f"'{name}' was trained without keeping its examples: add examples again to retrain."
        info = self.pack()
        if info is not None:
            try:
                self.examples.check_pack(PackStamp.of(info))
            except ExamplePackError as exc:
                self.notify(f"'{name}': {exc}", True)
        if note:
            self.notify(note, False)

    def new_head(self, name: str, classes: tuple[str, ...] = ()) -> bool:
        try:
            name = check_name(name)
            if name in self.entries or self.store.path(name).exists():
                raise ValueError(f"a head named '{name}' already exists")
            ex = ExampleSet.empty()
            for c in classes:
                ex = logic.add_class(ex, c)
            self.store.save_examples(name, ex)
        except (ValueError, OSError) as exc:
            self.notify(str(exc), True)
            return False
        self.reload()
        self.select(name)
        self.notify(f"Head '{name}' created: add classes and examples, then Train.", False)
        return True

    def rename_head(self, old: str, new: str) -> bool:
        try:
            new = check_name(new)
            if self.store.path(old).exists():
                self.store.rename(old, new)
            elif new in self.entries:
                raise ValueError(f"a head named '{new}' already exists")
            else:
                self.store.examples_path(old).rename(self.store.examples_path(new))
            if audio_dir(self.store, old).is_dir() and not audio_dir(self.store, new).exists():
                audio_dir(self.store, old).rename(audio_dir(self.store, new))
        except (ValueError, OSError, HeadError) as exc:
            self.notify(str(exc), True)
            return False
        if self.active_name == old:
            self.active_name = new
            self.remember(self.store.path(new))
        self.current = new if self.current == old else self.current
        self.reload()
        self.select(self.current)
        return True

    def delete_head(self, name: str) -> None:
        if self.active_name == name:
            self.activate(None)
        try:
            self.store.delete(name)
        except (HeadError, OSError) as exc:  # e.g. the heads folder is locked by another writer
            self.notify(str(exc), True)
        kept = audio_dir(self.store, name)
        if kept.is_dir():
            for f in kept.glob("*.flac"):
                f.unlink(missing_ok=True)
            try:
                kept.rmdir()
            except OSError as exc:  # other files the user put there stay
                self.notify(f"Kept audio folder not removed: {exc}", True)
        self.reload()

    def import_head(self, path: str | Path, name: str | None = None) -> bool:
        try:
            out = self.store.import_file(path, name)
        except (HeadError, ValueError, OSError) as exc:
            self.notify(f"Import refused: {exc}", True)
            return False
        self.reload()
        self.select(out.name[: -len(".safetensors")])
        self.notify(f"Imported {out}", False)
        return True

    def export_head(self, name: str, path: str | Path) -> Path | None:
        try:
            out = self.store.export(name, path)
        except (HeadError, ValueError, OSError) as exc:
            self.notify(f"Export failed: {exc}", True)
            return None
        self.notify(f"Exported '{name}' to {out}", False)
        return out

    # --- activation -------------------------------------------------------------------------------------
    def activate(self, name: str | None) -> bool:
        """Run head ``name`` live and on files (None: no head). A head of another pack is refused."""
        head = None
        if name is not None:
            info = self.pack()
            if info is None:
                self.wanted_head = str(self.store.path(name))
                self.notify("The model is still loading; the head will be activated when it is ready.", False)
                return False
            try:
                head = load_head(self.store.path(name), pack_id=info.pack_id, layout=info.embedding_layout)
            except (HeadError, ValueError) as exc:
                self.notify(f"Cannot activate: {exc}", True)
                return False
        self.active, self.active_name = head, name
        self.activated(head, name)
        self.remember(None if name is None else self.store.path(name))
        if head is not None:
            self.notify(f"Head '{name}' is active.", False)
        self.reload()
        return True

    def engine_ready(self) -> None:
        """Activate the head remembered in the settings (or asked for while loading), once."""
        self.reload()
        wanted, self.wanted_head = self.wanted_head, None
        if wanted and Path(wanted).parent == self.store.root and Path(wanted).is_file():
            self.activate(Path(wanted).name[: -len(".safetensors")])
        if self.current is None and self.active_name is not None:
            self.select(self.active_name)  # "That was…" offers the active head's classes after a restart

    # --- classes and examples ---------------------------------------------------------------------------
    def edit(self, fn: Callable[..., ExampleSet], *args: Any) -> bool:
        """Replace the edited head's example set with ``fn(examples, *args)`` and save it."""
        if self.current is None:
            self.notify("Choose or make a head first.", True)
            return False
        try:
            ex = fn(self.examples, *args)
            self.store.save_examples(self.current, ex)
        except (ValueError, OSError) as exc:
            self.notify(str(exc), True)
            return False
        self.examples = ex
        self.reload()
        return True

    def add_background(self) -> bool:
        if BACKGROUND not in self.examples.classes and not self.edit(logic.add_class, BACKGROUND):
            return False
        self.notify("Record 10–30 s of the room (no target sounds) into 'background'.", False)
        return True

    def add_examples(self, class_name: str, emb: np.ndarray, source: str = "span") -> bool:
        """ "That was X": add embeddings (n, D) float32 to ``class_name`` of the edited head."""
        if self.current is None:
            self.notify("Choose or make a head first (Heads ▸ Manage heads…).", True)
            return False
        info = self.pack()
        pack = PackStamp.of(info) if info is not None else None
        return self.edit(logic.add_examples, class_name, emb, source, pack)

    # --- job results ------------------------------------------------------------------------------------
    def embedded(self, r: Any) -> None:
        """File an ``EmbedResult`` into its head's example set (the edited one or another)."""
        name = r.job.head
        try:
            ex = self.examples if name == self.current else self.store.load_examples(name)
            ex = logic.add_examples(ex, r.job.class_name, r.emb, r.sources, r.pack)
            self.store.save_examples(name, ex)
        except (ValueError, OSError, HeadError) as exc:
            self.notify(str(exc), True)
            return
        if name == self.current:
            self.examples = ex
            self.reload()
        what = f"{r.files} file(s)" if r.job.audio is None else "the recording"
        errs = f"; skipped: {'; '.join(r.errors)}" if r.errors else ""
        text = f"Added {len(r.emb)} example window(s) from {what} to '{r.job.class_name}'{errs}."
        self.notify(text, bool(r.errors))

    def trained(self, r: Any) -> None:
        """A ``TrainResult``: keep its report; re-activate the head if it is the active one."""
        self.last_report = r.report
        self.notify(f"Head '{r.job.head}' saved to {r.path}", False)
        self.reload()
        if self.active_name == r.job.head:
            self.activate(r.job.head)
