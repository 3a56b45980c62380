"""Portable detectors: ``encotag head export NAME --onnx`` checked with onnxruntime against Encotag's own
torch outputs, for a codec pack and a mel pack, on a real clip; and the README's snippet runs as written."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from tests.conftest import REPO_ROOT

CLIP = REPO_ROOT / "resources" / "examples" / "example.flac"


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))
    return tmp_path


def _head_for(pack: Path | None, name: str, kind: str = "logreg", trained: bool = True):
    """A head for ``pack`` (None: the shipped default pack), saved: trained on the pack's embeddings of
    the clip against noise; or (``trained`` False, for the tiny random packs, whose embeddings vary by
    1e-5 so that standardising them would magnify float rounding 1e5 times) random unit-scale weights."""
    from app.paths import heads_dir
    from models.audio import load_audio
    from models.heads.head_data import window_batch
    from models.heads.head_store import HeadStore
    from models.heads.heads import train_head
    from models.tagging.engine import Engine

    engine = Engine.load(pack)
    clip = load_audio(CLIP, int(engine.sample_rate))[: 6 * int(engine.sample_rate)]
    rng = np.random.default_rng(0)
    noise = (0.05 * rng.normal(size=len(clip))).astype(np.float32)
    _, a = engine.infer(window_batch(clip, engine))
    _, b = engine.infer(window_batch(noise, engine))
    x = np.concatenate([a, b])
    y = np.repeat([0, 1], [len(a), len(b)])
    head, _ = train_head(x, y, ["clip", "background"], name=name, kind=kind, c_grid=(1.0,), n_folds=2,
                         pack_id=engine.info.pack_id, layout=engine.info.embedding_layout)  # fmt: skip
    if not trained:
        d = engine.embedding_size
        params = {k: rng.normal(0, 1, v.shape).astype(np.float32) for k, v in head.params.items()}
        head = dataclasses.replace(
            head, mean=np.zeros(d, np.float32), scale=np.ones(d, np.float32), params=params
        )
    HeadStore(heads_dir()).save(head, name, examples=None)
    return engine, head


def _export_and_check(capsys, pack: Path, out: Path, name: str) -> tuple[float, float, str]:
    rc = main(["head", "export", name, "--onnx", str(out), "--check", str(CLIP), "--pack", str(pack)])
    text = capsys.readouterr().out
    assert rc == 0, text
    m = re.search(r"max abs difference (\S+) \(head\), (\S+) \(AudioSet\)", text)
    assert m, text
    return float(m.group(1)), float(m.group(2)), text


def _readme_snippet() -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- onnx-snippet -->")[1].split("```python")[1].split("```")[0]
    assert len([line for line in block.splitlines() if line.strip()]) <= 11
    return block


def test_onnx_export_of_a_mel_pack_matches_torch(home, capsys, tiny_mel_pack):
    _check_pack(home, capsys, tiny_mel_pack, "mlp", trained=False)


def test_onnx_export_of_a_codec_pack_matches_torch(home, capsys, tiny_codec_pack):
    _check_pack(home, capsys, tiny_codec_pack, "logreg", trained=False)


def test_onnx_export_of_real_packs(home, capsys, teacher_pack):
    """The shipped default pack (codec) and the teacher (mel), real weights, on a real clip."""
    for pack in (None, teacher_pack):
        _check_pack(home, capsys, pack, "logreg", trained=True)


def _check_pack(home: Path, capsys, pack: Path | None, kind: str, trained: bool) -> None:
    import onnxruntime as ort

    from models.audio import load_audio
    from models.heads.head_data import window_batch
    from models.resources import default_pack_dir

    engine, head = _head_for(pack, "clipper", kind=kind, trained=trained)
    out = home / "clipper.onnx"
    d_head, d_as, text = _export_and_check(capsys, pack or default_pack_dir(), out, "clipper")
    print(text)
    assert d_head <= 1e-3 and d_as <= 1e-3  # probabilities; the run prints the figures
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["classes"] == ["clip", "background"] and card["sample_rate"] == engine.sample_rate
    assert card["thresholds"] == pytest.approx([float(t) for t in head.thresholds], abs=1e-6)
    assert card["input_samples"] == round(engine.window.window_s * engine.sample_rate)
    assert card["pack"]["pack_id"] == engine.info.pack_id and len(card["audioset_labels"]) == 527
    # onnxruntime alone, as a user without Encotag runs it, on the windows Encotag tags
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    windows = window_batch(load_audio(CLIP, int(engine.sample_rate)), engine)[:5]
    hp, ap = sess.run(["head_probs", "audioset_probs"], {"audio": windows})
    probs, emb = engine.infer(windows)
    assert np.abs(ap - probs).max() <= 1e-3 and np.abs(hp - head.predict(emb)).max() <= 1e-3
    # the README's lines run as written (the clip in place of the user's recording)
    snippet = (
        _readme_snippet()
        .replace("doorbell.onnx", str(out))
        .replace("doorbell.json", str(out.with_suffix(".json")))
    )
    scope: dict = {}
    exec(compile(snippet.replace("recording.wav", str(CLIP)), "README", "exec"), scope)  # noqa: S102
    assert (
        np.abs(scope["head"][:5] - hp).max() <= 1e-2
    )  # another resampler than Encotag's (soxr HQ, streamed)


def test_onnx_export_refuses_a_head_of_another_pack(home, capsys, tiny_codec_pack, tiny_mel_pack):
    _head_for(tiny_mel_pack, "melhead")
    rc = main(["head", "export", "melhead", "--onnx", str(home / "x.onnx"), "--pack", str(tiny_codec_pack)])
    err = capsys.readouterr().err
    assert rc == 1 and "another model pack" in err and len(err.strip().splitlines()) == 1
    assert not (home / "x.onnx").exists()
