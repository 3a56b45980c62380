"""Batched embedding of many files for heads (``models.heads.head_data.embed_files``) against ``tag_file``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.config import WindowConfig
from models.heads.head_data import embed_files
from models.tagging.engine import Engine
from models.tagging.pipeline import tag_file


def _clips(folder: Path) -> list[Path]:
    """Clips of several lengths and rates: under 50 ms, two of equal length, over one window, one long
    enough to be streamed, a stereo one, and an unreadable one."""
    rng = np.random.default_rng(0)
    specs = [("tiny", 0.02, 16000), ("a", 0.4, 16000), ("b", 0.4, 16000), ("c", 1.8, 24000),
             ("long", 2.6, 16000), ("stereo", 0.9, 44100)]  # fmt: skip
    out = []
    for name, seconds, sr in specs:
        n = int(seconds * sr)
        x = 0.2 * rng.normal(size=(n, 2) if name == "stereo" else n).astype(np.float32)
        path = folder / f"{name}.wav"
        sf.write(path, x, sr)
        out.append(path)
    bad = folder / "broken.wav"
    bad.write_bytes(b"RIFF not really")
    return [*out[:3], bad, *out[3:]]


@pytest.mark.parametrize("pack", ["tiny_codec_pack", "tiny_mel_pack"])
def test_batched_embeddings_equal_tag_file(tmp_path, request, monkeypatch, pack):
    import models.heads.head_data as hd

    monkeypatch.setattr(hd, "LONG_S", 2.0)  # "long" (2.6 s) is streamed through tag_file
    monkeypatch.setattr(hd, "ENCODE_BLOCK_S", 2.0)
    engine = Engine.load(request.getfixturevalue(pack), threads=1)
    files = _clips(tmp_path)
    window = WindowConfig(window_s=0.5, hop_s=0.2)
    seen = []
    per_file, errors = embed_files(
        engine, files, window=window, chunk_files=3, batch_windows=5, progress=seen.append
    )
    assert len(per_file) == len(files)
    assert len(errors) == 1 and "broken.wav" in errors[0]
    assert per_file[3].shape == (0, engine.embedding_size)
    assert [p.done for p in seen] == [3, 6, 7] and seen[-1].total == len(files)
    for path, emb in zip(files, per_file, strict=True):
        if path.name == "broken.wav":
            continue
        ref = np.stack([r.embedding for r in tag_file(engine, path, window=window)])
        assert emb.shape == ref.shape and emb.dtype == np.float32, path.name
        # Batches of other sizes may take other float32 kernels (summation order differs by CPU: 4e-5
        # seen on AMD EPYC against embedding values of 1e-3..1e-1); a wrong window would differ by far more.
        np.testing.assert_allclose(emb, ref, rtol=1e-3, atol=1e-4, err_msg=path.name)
    assert len(per_file[files.index(tmp_path / "c.wav")]) == 8  # 1.8 s: 7 full windows + a padded tail


def test_cancel_stops_between_chunks(tmp_path, tiny_mel_pack):
    engine = Engine.load(tiny_mel_pack, threads=1)
    files = _clips(tmp_path)
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 1

    per_file, _ = embed_files(engine, files, chunk_files=2, cancel=cancel)
    assert len(per_file) == 2
