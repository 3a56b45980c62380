"""The batch view (app/gui/batch.py): a folder of many files opens as one table filled as results
arrive; sort, filter, double-click to the file's timeline, Export of the whole batch, Cancel; 5 000
entries arriving from a worker thread keep the event loop responsive."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt, QTimer  # noqa: E402

from app.export import FORMATS, parse_events  # noqa: E402
from app.gui.batch import BatchView  # noqa: E402
from app.gui.file_view import FileView  # noqa: E402
from app.gui.main_window import MainWindow  # noqa: E402
from app.settings import Settings  # noqa: E402
from models.batch import tables  # noqa: E402
from tests.stall import TickGaps  # noqa: E402

SR = 16000
LABELS = ("Speech", "Music", "Dog", "Bird", "Siren")


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))


@pytest.fixture
def window(qtbot, tiny_mel_pack: Path):
    win = MainWindow(Settings(window_s=1.0, hop_s=0.5, threshold=0.5), pack_path=str(tiny_mel_pack))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.pack_info is not None, timeout=30000)
    yield win
    for i in range(win.tabs.count()):
        if isinstance(w := win.tabs.widget(i), BatchView):
            w.stop()
    win.shutdown()


def _clips(folder: Path, n: int, seconds: float = 1.2) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    out = []
    for i in range(n):
        p = folder / f"c{i:02d}.wav"
        sf.write(p, (0.3 * np.sin(2 * np.pi * (200 + 60 * i) * t)).astype(np.float32), SR)
        out.append(p)
    return out


def _fake(i: int) -> dict:
    labels = [LABELS[(i + k) % 5] for k in range(3)]
    return {"file": f"/archive/f{i:05d}.wav", "key": f"/archive/f{i:05d}.wav", "status": "ok", "error": "",
            "duration": 1.0 + i % 7, "windows": 3, "top_labels": labels, "top_scores": [0.9, 0.5, 0.2],
            "top_trusted": [True, i % 2 == 0, False], "n_events": i % 4, "events": []}  # fmt: skip


def test_5000_entries_keep_the_event_loop_responsive(qtbot) -> None:
    """5 000 results arrive from a worker thread (queued signals, as from the batch runner) while a 10 ms
    timer ticks: the table is a model/view, so the GUI thread never works over 1 s between two ticks (the
    bound of the other GUI tests; tests/stall.py says why its CPU time is the figure)."""
    paths = [f"/archive/f{i:05d}.wav" for i in range(5000)]
    view = BatchView([Path(p) for p in paths], None)
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    view.table.sortByColumn(3, Qt.SortOrder.AscendingOrder)  # sorted while rows change
    gaps = TickGaps()
    timer = QTimer()
    timer.timeout.connect(gaps.tick)
    timer.start(10)

    def produce() -> None:
        for start in range(0, 5000, 25):
            view.runner.yielded.emit(1, [_fake(i) for i in range(start, start + 25)])
            time.sleep(0.002)

    th = threading.Thread(target=produce)
    th.start()
    qtbot.waitUntil(lambda: view.rows.done == 5000, timeout=120000)
    th.join()
    qtbot.wait(50)
    timer.stop()
    print(f"5000 batch entries: {gaps.summary()}")
    assert len(gaps.cpu) > 5 and max(gaps.cpu) < 1.0, f"the GUI thread blocked its loop: {gaps.summary()}"
    assert view.proxy.rowCount() == 5000 and view.bar.value() == 5000
    view.filter.setText("Siren 0.90")
    assert view.proxy.rowCount() == 1000  # every 5th file has Siren on top
    view.filter.setText("")
    view.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)  # duration, as a number
    top = view.proxy.index(0, 1).data()
    assert top == "7.00"


def test_open_folder_fills_the_batch_view(qtbot, window: MainWindow, tmp_path: Path) -> None:
    files = _clips(tmp_path / "in", 11)
    (tmp_path / "in" / "bad.wav").write_bytes(b"RIFF not really audio")
    assert window.open_paths([tmp_path / "in"]) == []
    view = window.tabs.currentWidget()
    assert isinstance(view, BatchView) and len(window.files) == 0  # one table, not 12 tabs
    qtbot.waitUntil(lambda: view.state != "running", timeout=60000)
    assert view.state == "done" and view.rows.done == 12 and view.bar.value() == 12
    rows = {r.name: r for r in view.rows.rows}
    assert rows["bad.wav"].status == "failed" and "bad.wav" in rows["bad.wav"].error
    assert all(rows[f.name].status == "ok" and rows[f.name].duration == pytest.approx(1.2) for f in files)
    assert all(len(view.rows.records[str(f)]["top_labels"]) == 5 for f in files)
    assert all(rows[f.name].top.startswith(view.rows.records[str(f)]["top_labels"][0]) for f in files)
    view.filter.setText("failed")
    assert view.proxy.rowCount() == 1
    view.filter.setText("")
    # double-click: that file's timeline opens as a file tab
    row = [r.path for r in view.rows.rows].index(str(files[3]))
    index = view.proxy.mapFromSource(view.model.index(row, 0))
    view.table.doubleClicked.emit(index)
    assert len(window.files) == 1 and isinstance(window.tabs.currentWidget(), FileView)
    assert window.current_file().path == files[3]
    # Export: the combined tables and every file's events in every format
    out = tmp_path / "export"
    with qtbot.waitSignal(view.exported, timeout=60000):
        view.export_to(out)
    back = tables.read_table(out / "batch.csv", "csv")
    assert sorted(r["file"] for r in back) == sorted(map(str, [*files, tmp_path / "in" / "bad.wav"]))
    if tables.have_pyarrow():
        assert tables.read_table(out / "batch.parquet", "parquet") == back
    events = tables.read_table(out / "batch.events.csv", "csv")
    for fmt in FORMATS:
        written = sorted((out / "events" / fmt).iterdir())
        assert len(written) == 11, fmt
    raven = parse_events(
        (out / "events" / "raven" / "c00.selections.txt").read_text(encoding="utf-8"), "raven"
    )
    assert [e.label for e in raven] == [e["label"] for e in events if e["file"] == str(files[0])]


def test_cancel_stops_the_batch(qtbot, window: MainWindow, tmp_path: Path) -> None:
    _clips(tmp_path / "in", 60, seconds=3.0)
    window.open_paths([tmp_path / "in"])
    view = window.tabs.currentWidget()
    assert isinstance(view, BatchView)
    qtbot.waitUntil(lambda: view.rows.done > 0, timeout=60000)
    view.cancel_button.click()
    qtbot.waitUntil(lambda: view.state != "running", timeout=60000)
    assert view.state == "cancelled" and 0 < view.rows.done < 60
    assert not view.cancel_button.isEnabled()
