"""Personal heads in the desktop app (pytest-qt, offscreen): make a head in the Heads dialog, drop example
files on its classes, train it with the Train button, reload it from the store, activate it and see head
probabilities on a tagged file; recording, "that was X" spans, list management, refusals; Qt-free helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pytestqt")
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402

from app.gui.heads.jobs import TrainJob  # noqa: E402
from app.gui.main_window import MainWindow  # noqa: E402
from app.gui.state import heads as logic  # noqa: E402
from app.paths import heads_dir  # noqa: E402
from app.settings import Settings  # noqa: E402
from models.heads.head_cv import source_groups  # noqa: E402
from models.heads.head_events import head_events  # noqa: E402
from models.heads.head_file import save_head  # noqa: E402
from models.heads.head_store import ExampleSet, HeadStore, PackStamp  # noqa: E402
from models.heads.heads import BACKGROUND, train_head  # noqa: E402
from models.tagging.windows import count_windows  # noqa: E402

SR = 16000


def _write_examples(folder: Path, kind: str, n: int, seed: int, seconds: float = 1.2) -> Path:
    """``n`` mono 16 kHz files: tones of 300-500 Hz or white noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    t = np.arange(int(seconds * SR)) / SR
    for i in range(n):
        if kind == "tone":
            x = 0.5 * np.sin(2 * np.pi * rng.uniform(300, 500) * t)
        else:
            x = 0.3 * rng.normal(size=len(t))
        sf.write(folder / f"{kind}_{i}.wav", x.astype(np.float32), SR)
    return folder


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _window(qtbot, pack: Path, **kw) -> MainWindow:
    win = MainWindow(Settings(window_s=1.0, hop_s=0.5, threshold=0.5), pack_path=str(pack), **kw)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.pack_info is not None, timeout=60000)
    return win


def _drop_on_class(table, name: str, paths: list[Path]) -> None:
    """A real QDropEvent on the row of class ``name`` (viewport coordinates)."""
    row = table.classes.index(name)
    centre = table.visualRect(table.model().index(row, 0)).center()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    ev = QDropEvent(
        QPointF(centre),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    table.dropEvent(ev)


def _idle(qtbot, dlg, timeout: int = 60000) -> None:
    qtbot.waitUntil(lambda: not dlg._jobs and not dlg.runner.busy, timeout=timeout)


def test_make_train_reload_activate_and_tag_a_file(qtbot, tiny_codec_pack: Path, tmp_path: Path) -> None:
    tones = _write_examples(tmp_path / "tones", "tone", 6, 0)
    noise = _write_examples(tmp_path / "noise", "noise", 6, 1)
    win = _window(qtbot, tiny_codec_pack)
    try:
        win.heads.act_manage.trigger()  # Heads ▸ Manage heads…
        dlg = win.heads.dialog
        assert dlg.isVisible() and not dlg.isModal()
        assert dlg.new_head("beeper")
        assert dlg.add_class("tone") and dlg.add_background()
        assert dlg.examples.classes == ("tone", BACKGROUND)
        _drop_on_class(dlg.class_panel.class_table, "tone", [tones])  # a folder
        _drop_on_class(dlg.class_panel.class_table, BACKGROUND, sorted(noise.glob("*.wav")))  # files
        _idle(qtbot, dlg)
        per_file = count_windows(int(1.2 * 24000), 24000, 12000)
        assert dlg.examples.counts() == {"tone": 6 * per_file, BACKGROUND: 6 * per_file}
        assert dlg.class_panel.class_table.item(0, 1).text() == str(6 * per_file)
        # the examples are kept as embeddings beside the (not yet trained) head
        store = HeadStore(heads_dir())
        assert store.load_examples("beeper").counts() == dlg.examples.counts()
        assert "not trained yet" in dlg.heads_panel.head_list.currentItem().text()

        qtbot.mouseClick(dlg.train_panel.train_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dlg.train_panel.cv_label.text() != "", timeout=60000)
        acc = float(dlg.train_panel.cv_label.text().split("Accuracy by recording: ")[1].split()[0])
        # the figure shown is cross-validated by recording: the same as train_head with the files as
        # groups (the tiny random pack cannot tell these files apart once a file's overlapping windows
        # are never on both sides of a fold, so it is near chance where window folds said 0.8)
        ex = dlg.examples
        _, by_rec = train_head(ex.emb, ex.label, ex.classes, groups=source_groups(ex.sources, ex.label))
        assert by_rec.grouping == "recording" and acc == pytest.approx(by_rec.cv_accuracy, abs=1e-3)
        assert dlg.last_report is not None and dlg.last_report.cv_accuracy == pytest.approx(acc, abs=1e-3)
        assert dlg.train_panel.confusion.rowCount() == dlg.train_panel.confusion.columnCount() == 2
        cells = [[int(dlg.train_panel.confusion.item(i, j).text()) for j in range(2)] for i in range(2)]
        assert np.sum(cells) == 12 * per_file and np.trace(cells) / np.sum(cells) == pytest.approx(
            acc, abs=1e-3
        )
        assert (
            "class 'tone' has only" not in dlg.train_panel.warnings.text()
        )  # 12 windows per class: no warning

        path = heads_dir() / "beeper.safetensors"
        assert path.is_file()
        head = store.load("beeper", pack_id=win.pack_info.pack_id, layout=win.pack_info.embedding_layout)
        assert head.classes == ("tone", BACKGROUND) and head.card.cv_accuracy == pytest.approx(acc, abs=1e-3)
        assert "accuracy by recording" in dlg.heads_panel.head_list.currentItem().text()
        assert dlg.train_panel.class_table.rowCount() == 2  # threshold, precision, recall per class
        assert dlg.train_panel.class_table.item(0, 1).text() == f"{float(head.thresholds[0]):.2f}"

        # activate: the worker's results now carry head_probs, the dock draws the head's curves
        qtbot.mouseClick(dlg.heads_panel.activate_button, Qt.MouseButton.LeftButton)
        assert dlg.active_name == "beeper" and dlg.active is not None
        assert win.settings.head_path == str(path)
        assert dlg.heads_panel.activate_button.text() == "Deactivate"
        batches: list = []
        win.worker.worker.file_batch.connect(lambda _job, b: batches.append(b))
        probe = tones / "tone_3.wav"
        win.open_paths([probe])
        qtbot.waitUntil(lambda: all(v.status == "done" for v in win.files.values()), timeout=60000)
        qtbot.waitUntil(lambda: sum(len(b) for b in batches) == per_file, timeout=10000)
        hp = np.concatenate([b.head_probs for b in batches])
        emb = np.concatenate([b.embeddings for b in batches])
        assert hp.shape == (per_file, 2) and np.allclose(hp.sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(hp, head.predict(emb), atol=1e-5)
        assert hp[:, 0].mean() > 0.5  # a tone file is called a tone
        view = next(iter(win.files.values()))
        win.tabs.setCurrentWidget(view)
        panel = win.heads.panel
        panel.refresh()
        assert win.heads.dock.isVisible()
        x, y = panel.curves[0].getData()
        assert len(x) == per_file and np.allclose(y, hp[:, 0], atol=1e-5)
        assert panel.curves[1] is None  # background is not drawn
        assert float(panel.table.item(0, 2).text()) == pytest.approx(float(head.thresholds[0]), abs=0.01)

        # head events of the file, per-class thresholds
        from app.export import parse_events
        from app.gui.heads.output import export_head_events

        out, n = export_head_events(win, dlg.active, tmp_path / "head.csv")
        events = parse_events(out.read_text(), "csv")
        assert len(events) == n and all(e.label == "tone (head)" for e in events)

        # the active head is remembered: a window started with these settings activates it again
        again = MainWindow(win.settings, pack_path=str(tiny_codec_pack))
        qtbot.addWidget(again)
        try:
            qtbot.waitUntil(lambda: again.heads.dialog.active_name == "beeper", timeout=60000)
            assert again.heads.panel.head is not None and again.heads.panel.head.classes == head.classes
        finally:
            again.shutdown()
            again.heads.dialog.shutdown()

        dlg.activate(None)
        assert dlg.active is None and win.settings.head_path is None and panel.head is None
    finally:
        win.shutdown()
        win.heads.dialog.shutdown()


def test_record_span_manage_and_refusals(qtbot, tiny_codec_pack: Path, tmp_path: Path) -> None:
    from app.audio_input import SyntheticSource

    t = np.arange(SR * 3) / SR
    tone = (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    made: list[SyntheticSource] = []

    def factory() -> SyntheticSource:
        made.append(SyntheticSource(tone, SR, 512, speed=8.0, loop=True))
        return made[-1]

    win = _window(qtbot, tiny_codec_pack, source_factory=factory)
    dlg = win.heads.dialog
    try:
        assert dlg.new_head("doorbell", ("ding", BACKGROUND))
        assert not dlg.new_head("doorbell")  # duplicate names are refused with a message
        assert "already exists" in dlg.msg.text()
        # record 2 s from the (synthetic) input into 'ding', keeping the audio (opt-in)
        dlg.class_panel.keep_audio.setChecked(True)
        assert dlg.record("ding", 2.0)
        qtbot.waitUntil(lambda: dlg.examples.counts().get("ding", 0) > 0, timeout=60000)
        assert made and made[0].frames_sent >= 2 * SR
        assert dlg.examples.counts()["ding"] == count_windows(2 * 24000, 24000, 12000)
        kept = Path(dlg.examples.sources[0])
        assert set(dlg.examples.sources) == {str(kept)} and kept.parent == heads_dir() / "doorbell.audio"
        assert sf.info(kept).frames == 2 * SR and sf.info(kept).samplerate == SR
        assert not dlg.recorder.active
        dlg.class_panel.keep_audio.setChecked(False)
        # "that was X": a span of a tagged file's timeline goes to a class
        clip = _write_examples(tmp_path / "clip", "noise", 1, 5, seconds=4.0) / "noise_0.wav"
        win.open_paths([clip])
        qtbot.waitUntil(lambda: all(v.status == "done" for v in win.files.values()), timeout=60000)
        view = next(iter(win.files.values()))
        win.tabs.setCurrentWidget(view)
        win.heads.panel.set_span_classes(dlg.examples.classes)
        win.heads.panel.span_class.setCurrentText(BACKGROUND)
        win.heads.panel.region.setRegion((0.0, 2.6))
        win.heads.panel.span_button.click()
        rows = logic.span_rows(view.series.starts, view.series.ends, 0.0, 2.6)
        assert dlg.examples.counts()[BACKGROUND] == len(rows) == 5  # centres 0.5, 1.0, …, 2.5 s
        np.testing.assert_allclose(dlg.examples.emb[dlg.examples.label == 1], view.series.embeddings[rows])
        assert all(s.startswith(str(clip)) for s in dlg.examples.sources[-5:])

        # train on the recording and the span, activate, and run it live next to the AudioSet tags
        dlg.train()
        qtbot.waitUntil(lambda: dlg.train_panel.cv_label.text() != "", timeout=60000)
        assert "class 'ding' has only 3 example(s)" in dlg.train_panel.warnings.text()
        assert dlg.activate("doorbell")
        live_heads: list = []
        win.worker.worker.live_result.connect(lambda r: live_heads.append(r.head_probs))
        win.start_live()
        win.tabs.setCurrentWidget(win.live_tab)
        qtbot.waitUntil(lambda: len(win.live.series) >= 3 and len(live_heads) >= 3, timeout=60000)
        assert all(h is not None and h.shape == (2,) for h in live_heads)
        win.refresh_all()
        win.heads.panel.refresh()
        x, y = win.heads.panel.curves[0].getData()
        assert len(x) == len(win.live.series) and np.all((y >= 0) & (y <= 1))
        # while listening, a recording is taken from the live stream (no second device stream)
        n_sources = len(made)
        assert dlg.record("ding", 1.0)
        qtbot.waitUntil(lambda: dlg.examples.counts()["ding"] == 4, timeout=60000)
        assert len(made) == n_sources and dlg.examples.sources[-1].startswith("mic 20")  # a dated take
        win.stop_live()
        dlg.activate(None)
        # class editing
        assert dlg.rename_class("ding", "bell") and dlg.examples.classes == ("bell", BACKGROUND)
        assert dlg.clear_class("bell") and dlg.examples.counts()["bell"] == 0
        assert dlg.remove_class("bell") and dlg.examples.classes == (BACKGROUND,)
        assert HeadStore(heads_dir()).load_examples("doorbell").classes == (BACKGROUND,)

        # training that is cancelled reports it and saves nothing
        rng = np.random.default_rng(0)
        d = win.pack_info.embedding_size
        emb60 = rng.normal(size=(60, d)).astype(np.float32)
        # examples made by another pack (or saved without a pack record) are refused before training
        for stamp, why in ((PackStamp("0" * 64, "x"), "another model pack"), (None, "without a record")):
            dlg._submit(
                TrainJob(
                    "foreign", ExampleSet(("a", "b"), emb60, np.repeat([0, 1], 30), (), stamp), dlg.store
                ),
                "train",
            )
            qtbot.waitUntil(lambda why=why: why in dlg.msg.text(), timeout=30000)
        assert not (heads_dir() / "foreign.safetensors").exists()
        alien = ExampleSet(("a", "b"), emb60, np.repeat([0, 1], 30), (), PackStamp("0" * 64, "x"))
        dlg.store.save_examples("alien", alien)
        dlg.refresh_list()
        dlg.select_head("alien")  # selecting it says at once that its examples cannot be used here
        assert "another model pack" in dlg.msg.text() and dlg.examples.counts() == {"a": 30, "b": 30}
        assert not dlg.add_examples("a", emb60[:2]) and "another model pack" in dlg.msg.text()
        dlg.delete_head("alien")
        ex = ExampleSet(("a", "b"), emb60, np.repeat([0, 1], 30), (), PackStamp.of(win.pack_info))
        cancel_on_progress = lambda job_id, _p: dlg.runner.cancel(job_id)  # noqa: E731
        dlg.runner.progress.connect(cancel_on_progress, Qt.ConnectionType.DirectConnection)
        dlg._submit(TrainJob("cancelme", ex, dlg.store), "train")
        qtbot.waitUntil(lambda: dlg.msg.text() == "Cancelled.", timeout=30000)
        assert not (heads_dir() / "cancelme.safetensors").exists()

        # a head made for another pack is listed as such and refused on activation
        x = np.concatenate([rng.normal(0, 1, (20, d)), rng.normal(3, 1, (20, d))]).astype(np.float32)
        other, _ = train_head(x, np.repeat([0, 1], 20), ("a", "b"), name="foreign", pack_id="0" * 64)
        save_head(other, heads_dir() / "foreign.safetensors")
        (heads_dir() / "broken.safetensors").write_bytes(b"not a head at all")
        dlg.refresh_list()
        texts = [dlg.heads_panel.head_list.item(i).text() for i in range(dlg.heads_panel.head_list.count())]
        assert any(s.startswith("broken — unreadable:") for s in texts)
        assert any(s.startswith("foreign") and "another model pack" in s for s in texts)
        assert not dlg.activate("foreign") and "another model pack" in dlg.msg.text()
        assert dlg.active is None
        assert not dlg.activate("broken") and "not a valid head file" in dlg.msg.text()
        # export, import (tampered copies refused), rename, delete
        out = dlg.export_head("foreign", tmp_path / "foreign_copy")
        assert out is not None and out.suffix == ".safetensors" and out.is_file()
        blob = bytearray(out.read_bytes())
        blob[-3] ^= 0xFF
        (tmp_path / "tampered.safetensors").write_bytes(bytes(blob))
        assert not dlg.import_head(tmp_path / "tampered.safetensors", "tampered")
        assert "refused" in dlg.msg.text() and not (heads_dir() / "tampered.safetensors").exists()
        assert dlg.import_head(out, "again") and (heads_dir() / "again.safetensors").is_file()
        assert dlg.rename_head("again", "twice") and dlg.current == "twice"
        assert dlg.rename_head("doorbell", "bell") and (heads_dir() / "bell.safetensors").is_file()
        # a trained head keeps its examples in its own file: one file renamed, no sidecar left behind
        assert len(dlg.store.load_examples("bell").label) and not list(heads_dir().glob("*.examples.*"))
        assert (heads_dir() / "bell.audio").is_dir() and not (heads_dir() / "doorbell.audio").exists()
        dlg.delete_head("twice")
        names = {e.name for e in logic.list_entries(dlg.store)}
        assert names == {"bell", "broken", "foreign"}
        dlg.delete_head("bell")
        assert not (heads_dir() / "bell.audio").exists() and not (heads_dir() / "bell.safetensors").exists()
    finally:
        win.shutdown()
        dlg.shutdown()


def test_logic_helpers() -> None:
    rng = np.random.default_rng(1)
    ex = ExampleSet.empty()
    ex = logic.add_class(ex, "cat")
    pack = PackStamp("a" * 64, "b" * 16)
    ex = logic.add_examples(ex, "dog", rng.normal(size=(3, 4)), "a.wav", pack)
    ex = logic.add_examples(ex, "cat", rng.normal(size=(2, 4)), ["x", "y"], pack)
    assert ex.classes == ("cat", "dog") and ex.counts() == {"cat": 2, "dog": 3}
    assert ex.sources == ("a.wav",) * 3 + ("x", "y")
    with pytest.raises(ValueError, match="8-dim"):
        logic.add_examples(ex, "cat", np.zeros((1, 8)), "z", pack)
    with pytest.raises(ValueError, match="another model pack"):
        logic.add_examples(ex, "cat", np.zeros((1, 4)), "z", PackStamp("c" * 64, "b" * 16))
    # every edit keeps the pack that made the embeddings
    edits = (
        logic.remove_class(ex, "cat"),
        logic.clear_class(ex, "dog"),
        logic.rename_class(ex, "dog", "w"),
        logic.add_class(ex, "owl"),
        logic.keep_rows(ex, ex.label == 0),
    )
    assert all(edited.pack == pack for edited in edits)
    with pytest.raises(ValueError, match="already exists"):
        logic.add_class(ex, "cat")
    dog_rows = ex.emb[ex.label == 1]
    no_cat = logic.remove_class(ex, "cat")
    assert no_cat.classes == ("dog",) and np.array_equal(no_cat.label, [0, 0, 0])
    np.testing.assert_array_equal(no_cat.emb, dog_rows)
    assert logic.clear_class(ex, "dog").counts() == {"cat": 2, "dog": 0}
    renamed = logic.rename_class(ex, "dog", "wolf")
    assert renamed.classes == ("cat", "wolf") and np.array_equal(renamed.label, ex.label)
    # sets saved by the CLI have no sources: editing pads them
    bare = ExampleSet(("a", "b"), np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1]), ())
    assert logic.remove_class(bare, "a").sources == ("", "")
    starts = np.arange(6) * 0.5
    ends = starts + 1.0
    np.testing.assert_array_equal(logic.span_rows(starts, ends, 0.9, 2.1), [1, 2, 3])
    np.testing.assert_array_equal(logic.span_rows(starts, ends, 3.3, 3.4), [5])  # nearest window
    assert len(logic.span_rows(np.zeros(0), np.zeros(0), 0, 1)) == 0
    # head events use each class's own threshold and skip background
    x = np.concatenate([rng.normal(0, 1, (30, 5)), rng.normal(4, 1, (30, 5))]).astype(np.float32)
    head, _ = train_head(x, np.repeat([0, 1], 30), (BACKGROUND, "beep"))
    probs = np.zeros((8, 2), np.float32)
    probs[:, 0] = 1.0
    probs[2:5] = [0.0, 1.0]
    events = head_events(head, np.arange(8) * 0.5, np.arange(8) * 0.5 + 1.0, probs)
    assert [(e.label, e.start) for e in events] == [("beep (head)", 1.0)]
    assert events[0].end == pytest.approx(3.0)
