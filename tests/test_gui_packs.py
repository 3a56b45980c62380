"""pytest-qt tests of the window with model packs: switching packs while listening, a missing pack, the
``encotag gui`` command line and the screenshot tool (moved from test_gui.py to keep modules small)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from app.gui.main_window import MainWindow  # noqa: E402
from app.settings import Settings  # noqa: E402
from tests.test_gui import SR, _tone_file  # noqa: E402


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))


def test_cli_smoke_screenshot(qtbot, tiny_mel_pack: Path, tmp_path: Path) -> None:
    import sys

    from app.cli import main

    clip = _tone_file(tmp_path / "smoke.wav", 2.0)
    out = tmp_path / "shot.png"
    hook = sys.excepthook
    try:
        code = main(["gui", "--pack", str(tiny_mel_pack), "--open", str(clip), "--synthetic", str(clip),
                     "--screenshot", str(out), "--exit-after", "4"])  # fmt: skip
    finally:
        sys.excepthook = hook
    assert code == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_switch_to_a_codec_pack_while_listening(qtbot, tiny_mel_pack: Path, tiny_codec_pack: Path) -> None:
    from app.audio_input import SyntheticSource

    t = np.arange(SR * 3) / SR
    signal = (0.3 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)
    win = MainWindow(
        Settings(window_s=1.0, hop_s=0.5),
        pack_path=str(tiny_mel_pack),
        source_factory=lambda: SyntheticSource(signal, SR, 512, speed=2.0, loop=True),
    )
    qtbot.addWidget(win)
    try:
        qtbot.waitUntil(lambda: win.pack_info is not None, timeout=30000)
        win.start_live()
        qtbot.waitUntil(lambda: len(win.live.series) >= 3, timeout=60000)
        mel_pca = win.live.trajectory.pca
        win.use_pack(str(tiny_codec_pack))
        assert win.settings.pack_path == str(tiny_codec_pack)
        qtbot.waitUntil(lambda: win.pack_info is not None and win.pack_info.name.startswith("tiny codec"))
        # the new engine's stream restarts the live history (and the trajectory's PCA)
        restarted = lambda: win.live.trajectory.pca is not mel_pca and len(win.live.series) >= 3  # noqa: E731
        qtbot.waitUntil(restarted, timeout=60000)

        def streams() -> bool:  # the codec pack's live path streams its encoder (the worker attaches it)
            tagger = win.live.tap.tagger if win.live.tap is not None else None
            codes = None if tagger is None else tagger.codes
            return codes is not None and codes.encoder.samples_encoded > 0

        qtbot.waitUntil(streams, timeout=60000)
        win.refresh_all()
        assert win.live.trajectory.pca.dim == win.live.series.embeddings.shape[1]
        assert win.ui.topk.labels_shown
    finally:
        win.shutdown()


def test_screenshot_tool_runs_the_real_window_under_xvfb(tiny_mel_pack: Path, tmp_path: Path) -> None:
    """tools/screenshot.sh (what renders docs/screenshot.png) with the tiny pack, into a temp file."""
    import shutil
    import subprocess
    import sys

    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run not installed (apt-get install xvfb xauth)")
    repo = Path(__file__).resolve().parent.parent
    out = tmp_path / "shot.png"
    env = dict(os.environ, PYTHON=sys.executable, ENCOTAG_SCREENSHOT_PACK=str(tiny_mel_pack),
               ENCOTAG_SCREENSHOT_SECONDS="2")  # fmt: skip
    env.pop("QT_QPA_PLATFORM", None)  # the real X11 (xcb) platform, not offscreen
    proc = subprocess.run(["bash", str(repo / "tools" / "screenshot.sh"), str(out)], env=env, cwd=repo,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_missing_pack_is_reported_and_files_fail_cleanly(qtbot, tmp_path: Path) -> None:
    win = MainWindow(Settings(), pack_path=str(tmp_path / "no_such_pack"))
    qtbot.addWidget(win)
    try:
        qtbot.waitUntil(lambda: "failed" in win.ui.model_status.text(), timeout=30000)
        assert "no_such_pack" in win.ui.model_status.text()
        (job,) = win.open_paths([_tone_file(tmp_path / "x.wav", 1.0)])
        qtbot.waitUntil(lambda: win.files[job].status.startswith("error"), timeout=10000)
        assert "no model" in win.files[job].status
    finally:
        win.shutdown()
