"""Correcting, merging and reviewing heads in the window (pytest-qt, teacher pack), and one definition of
head events: the window's export equals ``encotag tag --head`` on the same file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("PySide6")

from app.cli import main  # noqa: E402
from app.export import parse_events  # noqa: E402
from app.gui.heads.output import export_head_events  # noqa: E402
from app.gui.main_window import MainWindow  # noqa: E402
from app.paths import heads_dir  # noqa: E402
from app.settings import Settings  # noqa: E402
from models.heads.head_edit import span_rows  # noqa: E402
from models.heads.head_store import HeadStore  # noqa: E402
from models.heads.heads import BACKGROUND  # noqa: E402
from tests.test_head_edit import SR, tone, write_set  # noqa: E402


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _idle(qtbot, dlg, timeout: int = 120000) -> None:
    qtbot.waitUntil(lambda: not dlg._jobs and not dlg.runner.busy, timeout=timeout)


def _train(pack: Path, name: str, **classes: Path) -> None:
    argv = ["head", "train", "--pack", str(pack), "--out", name, "--keep-examples"]
    for cls, folder in classes.items():
        argv += ["--class", f"{cls}={folder}"]
    assert main(argv) == 0


def test_correct_merge_review_and_events_equal_the_cli(
    qtbot, teacher_pack: Path, tmp_path: Path, capsys
) -> None:
    tones = write_set(tmp_path / "tones", "tone", 8, 0)
    noise = write_set(tmp_path / "noise", "noise", 8, 1)
    whistles = write_set(tmp_path / "whistles", "whistle", 6, 3)
    _train(teacher_pack, "beeper", tone=tones, background=noise)
    _train(teacher_pack, "kettle", whistle=whistles, background=noise)
    rng = np.random.default_rng(7)
    kitchen = tmp_path / "kitchen.wav"
    parts = [
        0.1 * rng.normal(size=3 * SR),
        tone(400, 2.0),
        0.1 * rng.normal(size=2 * SR),
        tone(2500, 3.0, 0.3),
    ]
    sf.write(kitchen, np.concatenate(parts).astype(np.float32), SR)
    capsys.readouterr()

    win = MainWindow(Settings(window_s=1.0, hop_s=0.5, threshold=0.5), pack_path=str(teacher_pack))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.pack_info is not None, timeout=60000)
    dlg = win.heads.dialog
    try:
        assert dlg.activate("beeper")
        win.open_paths([kitchen])
        qtbot.waitUntil(lambda: all(v.status == "done" for v in win.files.values()), timeout=60000)
        view = next(iter(win.files.values()))
        win.tabs.setCurrentWidget(view)

        # one definition of head events: the window's export equals `encotag tag --head` on the file
        out, n = export_head_events(win, dlg.active, tmp_path / "gui.json", "json")
        gui = parse_events(out.read_text(), "json")
        # a folder target: one events file per input, in --format (a file target is a combined dataset)
        rc = main(["tag", str(kitchen), "--pack", str(teacher_pack), "--head", "beeper", "--window", "1",
                   "--hop", "0.5", "--format", "json", "--out", str(tmp_path / "cli") + "/"])  # fmt: skip
        assert rc == 0
        (cli_file,) = (tmp_path / "cli").iterdir()
        cli = [e for e in parse_events(cli_file.read_text(), "json") if e.label.endswith(" (head)")]
        assert n >= 1 and [e.label for e in gui] == [e.label for e in cli] == ["tone (head)"] * len(gui)
        for a, b in zip(gui, cli, strict=True):
            assert a.start == pytest.approx(b.start) and a.end == pytest.approx(b.end)
            assert a.score == pytest.approx(b.score, abs=1e-4)
        assert any(e.start >= 6.5 for e in gui), "the whistle (7-10 s) fools the head before the correction"

        # correct: the whistle span is background; the head is retrained and re-activated
        panel = win.heads.panel
        panel.refresh()
        panel.region.setRegion((7.5, 9.5))
        assert panel.fix_class.currentText() == BACKGROUND and panel.fix_button.isEnabled()
        old_head = dlg.active
        panel.fix_button.click()
        _idle(qtbot, dlg)
        qtbot.waitUntil(lambda: dlg.active is not old_head, timeout=10000)
        head = dlg.active
        series = view.series
        rows = span_rows(series.starts, series.ends, 7.5, 9.5)
        assert len(rows) >= 3
        assert old_head.detections(old_head.predict(series.embeddings[rows]))[:, 0].sum() >= len(rows) - 1
        assert not head.detections(head.predict(series.embeddings[rows]))[:, 0].any()  # stops firing there
        tone_rows = span_rows(series.starts, series.ends, 3.5, 4.5)
        assert head.detections(head.predict(series.embeddings[tone_rows]))[
            :, 0
        ].all()  # the real tone still fires
        store = HeadStore(heads_dir())
        ex = store.load_examples("beeper")
        src = [s for s, lab in zip(ex.sources, ex.label, strict=True) if ex.classes[lab] == BACKGROUND]
        assert any(s.startswith(f"{kitchen} ") and s.endswith(" s") for s in src)  # its provenance
        assert ex.counts()["tone"] == store.load_examples("kettle").counts()[BACKGROUND]  # 8 files each
        assert "Accuracy by recording" in dlg.train_panel.cv_label.text()

        # merge beeper + kettle in the dialog
        dlg.extras.merge(["beeper", "kettle"], "both")
        _idle(qtbot, dlg)
        merged = store.load("both")
        assert merged.classes == ("tone", BACKGROUND, "whistle")
        assert "both" in dlg.editor.entries and dlg.editor.entries["both"].card is not None

        # per-class thresholds for a target false-alarm rate per hour, chosen in the train panel
        dlg.select_head("kettle")
        tp = dlg.train_panel
        tp.mode.setCurrentIndex(tp.mode.findData("per_hour"))
        tp.far.setValue(30.0)
        dlg.train()
        _idle(qtbot, dlg)
        kettle = store.load("kettle")
        assert kettle.card.calibration == "per_hour=30;hop=0.5"
        fa = tp.class_table.item(0, 4).text()  # whistle: false alarms per hour on the background examples
        assert tp.class_table.item(0, 0).text() == "whistle" and float(fa) <= 30.0
        kex = store.load_examples("kettle")
        fired = kettle.detections(kettle.predict(kex.emb[kex.label == kex.classes.index(BACKGROUND)]))[:, 0]
        assert fired.mean() * 3600 / 0.5 <= 30.0

        # review: remove the correction by its source, then train again
        dlg.select_head("beeper")
        correction = next(s for s in src if s.startswith(f"{kitchen} "))
        before = dlg.examples.counts()[BACKGROUND]
        assert dlg.extras.remove([(BACKGROUND, correction)])
        assert store.load_examples("beeper").counts()[BACKGROUND] < before
    finally:
        win.shutdown()
        dlg.shutdown()


def test_onnx_button_exports_on_the_job_thread(qtbot, tiny_mel_pack: Path, tmp_path: Path) -> None:
    import json

    from tests.test_head_onnx import _head_for

    _, head = _head_for(tiny_mel_pack, "melhead", trained=False)
    win = MainWindow(Settings(window_s=1.0, hop_s=0.5), pack_path=str(tiny_mel_pack))
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.pack_info is not None, timeout=60000)
    dlg = win.heads.dialog
    try:
        dlg.refresh_list()
        out = tmp_path / "melhead.onnx"
        dlg.heads_panel.onnx_requested.emit("melhead", str(out))  # what ONNX… emits after its file dialog
        assert dlg._jobs and dlg.train_panel.progress.isVisible() is not None
        _idle(qtbot, dlg, timeout=300000)
        assert out.is_file() and "Exported 'melhead'" in dlg.msg.text()
        card = json.loads(out.with_suffix(".json").read_text())
        assert card["classes"] == list(head.classes) and card["head"] == "melhead"
    finally:
        win.shutdown()
        dlg.shutdown()
