"""Engine on tiny packs (shapes, probabilities, timestamps), code streams, and the teacher's top tags."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from models.codec.codes import CodesError, CodeStream, load_codes, save_codes
from models.packs.pack import PackError
from models.tagging.engine import Engine, EngineError


@pytest.fixture(scope="module")
def codec_engine(tiny_codec_pack: Path) -> Engine:
    return Engine.load(tiny_codec_pack, threads=1)


@pytest.fixture(scope="module")
def mel_engine(tiny_mel_pack: Path) -> Engine:
    return Engine.load(tiny_mel_pack, threads=1)


def _noise(b: int, seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((b, int(seconds * sr))) * 0.1).astype(np.float32)


@pytest.mark.parametrize("which", ["codec_engine", "mel_engine"])
def test_infer_shapes_and_probabilities(which: str, request: pytest.FixtureRequest) -> None:
    engine: Engine = request.getfixturevalue(which)
    assert engine.sample_rate == (24000 if which == "codec_engine" else 32000)
    audio = _noise(3, 1.0, engine.sample_rate)
    probs, emb = engine.infer(audio)
    assert probs.shape == (3, 527) and probs.dtype == np.float32
    assert emb.shape == (3, engine.embedding_size) and emb.dtype == np.float32
    assert np.all((probs >= 0) & (probs <= 1)) and np.isfinite(emb).all()
    # batching does not change results; a single row (1-D) is a batch of one
    engine.batch_size = 2
    probs2, emb2 = engine.infer(audio)
    engine.batch_size = 16
    np.testing.assert_allclose(probs2, probs, atol=1e-5)
    p1, e1 = engine.infer(audio[1])
    np.testing.assert_allclose(p1[0], probs[1], atol=1e-5)
    np.testing.assert_allclose(e1[0], emb[1], atol=1e-4)
    # the low-level part is the per-dim mean over time of the input representation
    assert engine.info.embedding_layout[-1] == ("lowlevel", 128)


@pytest.mark.parametrize("which", ["codec_engine", "mel_engine"])
def test_short_and_bad_audio(which: str, request: pytest.FixtureRequest) -> None:
    engine: Engine = request.getfixturevalue(which)
    probs, _ = engine.infer(np.zeros((1, 10), np.float32))
    assert probs.shape == (1, 527)
    bad = _noise(1, 0.5, engine.sample_rate)
    bad[0, 5] = np.nan
    assert np.isfinite(engine.infer(bad)[1]).all()
    with pytest.raises(EngineError):
        engine.infer(np.zeros((1, 2, 100), np.float32))
    with pytest.raises(EngineError):
        engine.infer(np.zeros((1, 0), np.float32))


@pytest.mark.parametrize("which", ["codec_engine", "mel_engine"])
def test_timestamp_embeddings(which: str, request: pytest.FixtureRequest) -> None:
    engine: Engine = request.getfixturevalue(which)
    emb, ts = engine.timestamp_embeddings(_noise(2, 2.0, engine.sample_rate))
    assert emb.shape[0] == 2 and emb.shape[2] == engine.embedding_size and emb.shape[1] == len(ts)
    steps = np.diff(ts)
    assert np.allclose(steps, steps[0], atol=1e-6) and 0 < steps[0] <= 50
    assert steps[0] == pytest.approx(engine.timestamp_hop_ms)
    assert ts[0] < 50 and 1900 < ts[-1] < 2050  # covers the 2 s


def test_codes_round_trip(codec_engine: Engine, tmp_path: Path) -> None:
    audio = _noise(1, 1.3, 24000, seed=3)
    codes = codec_engine.encode(audio)
    t = math.ceil(audio.shape[1] / 320)
    assert codes.shape == (1, codec_engine.codec.n_q, t) and codes.dtype == np.int64
    stream = CodeStream(
        codes=codes[0],
        codec_id=codec_engine.codec_id,
        bandwidth=codec_engine.codec.cfg.bandwidth,
        frame_rate=codec_engine.codec.frame_rate,
        sample_rate=24000,
        n_samples=audio.shape[1],
    )
    path = save_codes(tmp_path / "clip.ecodes", stream)
    back = load_codes(path, codec_id=codec_engine.codec_id)
    assert np.array_equal(back.codes, codes[0]) and back.n_samples == audio.shape[1]
    assert back.duration == pytest.approx(1.3, abs=1e-3) and back.bandwidth == 3.0
    probs_a, emb_a = codec_engine.infer(audio)
    probs_c, emb_c = codec_engine.infer_codes(back.codes[None])
    np.testing.assert_allclose(probs_c, probs_a, atol=1e-5)
    np.testing.assert_allclose(emb_c, emb_a, atol=1e-4)
    with pytest.raises(CodesError, match="made by codec"):
        load_codes(path, codec_id="0" * 64)
    (tmp_path / "junk.ecodes").write_bytes(b"junk")
    with pytest.raises(CodesError, match="junk.ecodes: "):
        load_codes(tmp_path / "junk.ecodes")


def test_mel_pack_has_no_codec(mel_engine: Engine) -> None:
    with pytest.raises(EngineError, match="codec pack"):
        mel_engine.encode(np.zeros((1, 100), np.float32))


def test_missing_default_pack_is_clear(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import models.resources

    monkeypatch.setattr(models.resources, "default_pack_dir", lambda: tmp_path / "default")
    with pytest.raises(PackError, match="no default model pack"):
        Engine.load(None)


def test_teacher_top_tags(teacher_pack: Path, shared_dir: Path) -> None:
    """The teacher pack tags its three sample clips with the expected top label."""
    import soundfile as sf

    engine = Engine.load(teacher_pack, threads=1)
    folder = shared_dir / "teachers" / "efficientat_mn04_as"
    expected = {"speech": "Speech", "music": "Music", "typing": {"Typing", "Computer keyboard"}}
    for name, want in expected.items():
        audio, sr = sf.read(folder / f"{name}.flac", dtype="float32")
        assert sr == 32000
        probs, _ = engine.infer(audio)
        top = engine.labels[int(np.argmax(probs[0]))]
        assert top in want if isinstance(want, set) else top == want
        assert probs[0].max() > 0.5


def test_official_codec_pack(tiny_codec_pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pack that names the official codec gets it from the (pre-filled) user cache, not from the pack."""
    from models.codec.official import default_cache_dir, official_codec
    from models.packs.pack import load_pack, save_pack
    from tests.test_codec import _hub_files

    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))
    src = load_pack(tiny_codec_pack)
    hub = tmp_path / "hub"
    hub.mkdir()
    cfg_bytes, weights = _hub_files(src.codec, hub)  # the tiny codec stands in for the official one
    (hub / "config.json").write_bytes(cfg_bytes)
    (hub / "model.safetensors").write_bytes(weights)
    official_codec(None, base_url=hub.as_uri() + "/")  # first use: "download" into the cache
    assert (default_cache_dir() / "model.safetensors").is_file()
    assert str(default_cache_dir()).startswith(str(tmp_path / "home" / "data"))  # the user data folder
    out = save_pack(
        tmp_path / "official_pack",
        name="official codec pack",
        tagger_cfg=src.tagger_cfg,
        tagger_state=src.tagger_state,
        codec_cfg=src.codec_cfg,
        labels=src.info.labels,
        trusted=list(src.info.trusted),
        window=src.window,
        licence="MIT",
        provenance={},
    )
    assert not (out / "codec.safetensors").exists()
    engine = Engine.load(out, threads=1)
    assert engine.codec_id == "official-encodec-24khz"
    audio = _noise(1, 0.5, 24000)
    reference = Engine(src, threads=1)
    np.testing.assert_allclose(engine.infer(audio)[0], reference.infer(audio)[0], atol=1e-5)


def test_silence_codes_are_encoded_once_and_pad_file_tails(codec_engine: Engine, tmp_path: Path) -> None:
    import soundfile as sf

    from models.tagging.code_tagging import tag_audio_codes

    n = 24000
    first = codec_engine.silence_codes(n)
    assert np.array_equal(first, codec_engine.encode(np.zeros((1, n), np.float32))[0])
    assert codec_engine.silence_codes(n) is first and not first.flags.writeable
    calls: list[int] = []
    encode = codec_engine.encode

    def counting_encode(audio: np.ndarray) -> np.ndarray:
        calls.append(int(np.asarray(audio).shape[-1]))
        return encode(audio)

    codec_engine.encode = counting_encode  # type: ignore[method-assign]
    try:
        for i in range(3):  # 1.3 s files: their last window is padded with silence codes
            sf.write(tmp_path / f"c{i}.wav", _noise(1, 1.3, 24000, seed=i)[0], 24000)
            results = list(tag_audio_codes(codec_engine, tmp_path / f"c{i}.wav"))
            assert results[-1].end == pytest.approx(1.3, abs=1e-3)
    finally:
        del codec_engine.encode
    assert len(calls) == 3 and n not in calls  # one encode per file, none for the silence
