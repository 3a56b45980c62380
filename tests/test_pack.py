"""Model packs: round trip, strict refusal of anything tampered with, the teacher pack."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from models.config import TaggerConfig, WindowConfig
from models.packs.pack import (
    CODEC_FILE,
    MANIFEST,
    TAGGER_FILE,
    PackError,
    load_pack,
    pack_id_of,
    save_pack,
    sha256_file,
)


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "pack"
    shutil.copytree(src, dst)
    return dst


def _edit_manifest(pack: Path, **changes: object) -> None:
    m = json.loads((pack / MANIFEST).read_text())
    for key, value in changes.items():
        if value is None and key.startswith("drop_"):
            m.pop(key.removeprefix("drop_"))
        else:
            m[key] = value
    (pack / MANIFEST).write_text(json.dumps(m))


def test_codec_pack_round_trip(tiny_codec_pack: Path) -> None:
    pack = load_pack(tiny_codec_pack)
    m = json.loads((tiny_codec_pack / MANIFEST).read_text())
    assert m["format_version"] == 1 and m["sample_rate"] == 24000 and m["codec"]["source"] == "pack"
    assert set(m["files"]) == {TAGGER_FILE, CODEC_FILE}
    assert pack.info.pack_id == pack_id_of([m["files"][TAGGER_FILE], m["files"][CODEC_FILE]])
    assert pack.codec_id == sha256_file(tiny_codec_pack / CODEC_FILE)
    assert pack.info.sample_rate == 24000 and len(pack.info.labels) == 527 and all(pack.info.trusted)
    assert pack.tagger_cfg == TaggerConfig(width=0.1, frontend="latent_direct")
    assert pack.window == WindowConfig(window_s=1.0, hop_s=0.5)
    layout = pack.info.embedding_layout
    assert [p for p, _ in layout] == ["block5", "block11", "block13", "block15", "lowlevel"]
    assert layout[-1] == ("lowlevel", 128)
    assert pack.info.embedding_size == sum(s for _, s in layout) == m["embedding"]["scene_size"]
    saved = load_file(str(tiny_codec_pack / TAGGER_FILE))
    for key, value in pack.tagger.state_dict().items():
        assert torch.equal(saved[key], value)


def test_mel_pack_trusted_indices(tiny_mel_pack: Path) -> None:
    pack = load_pack(tiny_mel_pack)
    assert pack.codec_cfg is None and pack.codec is None and pack.info.sample_rate == 32000
    assert pack.info.trusted[0] and not pack.info.trusted[1] and sum(pack.info.trusted) == 264
    assert pack.mel_cfg.sample_rate == 32000


def test_save_replaces_atomically(tiny_mel_pack: Path, tmp_path: Path) -> None:
    pack = load_pack(tiny_mel_pack)
    out = tmp_path / "p"
    for name in ("first", "second"):
        save_pack(
            out,
            name=name,
            tagger_cfg=pack.tagger_cfg,
            tagger_state=pack.tagger_state,
            labels=pack.info.labels,
            trusted=list(pack.info.trusted),
            window=pack.window,
            licence="MIT",
            provenance={},
        )
    assert load_pack(out).info.name == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # no temp or old folders left


def test_tampered_weights_refused(tiny_codec_pack: Path, tmp_path: Path) -> None:
    pack = _copy(tiny_codec_pack, tmp_path)
    data = bytearray((pack / CODEC_FILE).read_bytes())
    data[-1] ^= 0x01
    (pack / CODEC_FILE).write_bytes(bytes(data))
    with pytest.raises(PackError, match="sha256 mismatch") as info:
        load_pack(pack)
    assert str(info.value).startswith(str(pack / CODEC_FILE) + ": ") and "\n" not in str(info.value)


def test_edited_manifest_refused(tiny_codec_pack: Path, tmp_path: Path) -> None:
    pack = _copy(tiny_codec_pack, tmp_path)
    m = json.loads((pack / MANIFEST).read_text())
    m["files"][TAGGER_FILE] = "0" * 64
    (pack / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(PackError, match="sha256 mismatch"):
        load_pack(pack)
    _edit_manifest(pack := _copy(tiny_codec_pack, tmp_path / "b"), labels=["x"] * 10)
    with pytest.raises(PackError, match="labels must be 527 strings"):
        load_pack(pack)
    _edit_manifest(pack := _copy(tiny_codec_pack, tmp_path / "c"), extra="surprise")
    with pytest.raises(PackError, match="unknown keys"):
        load_pack(pack)
    _edit_manifest(pack := _copy(tiny_codec_pack, tmp_path / "d"), drop_licence=None)
    with pytest.raises(PackError, match="missing keys"):
        load_pack(pack)
    _edit_manifest(pack := _copy(tiny_codec_pack, tmp_path / "e"), sample_rate=16000)
    with pytest.raises(PackError, match="sample_rate"):
        load_pack(pack)
    (pack := _copy(tiny_codec_pack, tmp_path / "f")).joinpath(MANIFEST).write_text("{not json")
    with pytest.raises(PackError, match="not valid JSON"):
        load_pack(pack)


def test_unknown_format_version_refused(tiny_mel_pack: Path, tmp_path: Path) -> None:
    pack = _copy(tiny_mel_pack, tmp_path)
    _edit_manifest(pack, format_version=2)
    with pytest.raises(PackError, match="unsupported format version 2"):
        load_pack(pack)


def test_wrong_shapes_refused(tiny_mel_pack: Path, tmp_path: Path) -> None:
    """A weight file with consistent hashes but the wrong tensor shapes is refused by the strict load."""
    pack = _copy(tiny_mel_pack, tmp_path)
    state = load_file(str(pack / TAGGER_FILE))
    key = next(k for k in state if k.endswith("classifier.5.weight"))
    state[key] = torch.zeros(state[key].shape[0], state[key].shape[1] + 1)
    save_file(state, str(pack / TAGGER_FILE))
    m = json.loads((pack / MANIFEST).read_text())
    m["files"][TAGGER_FILE] = sha256_file(pack / TAGGER_FILE)
    (pack / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(PackError, match="does not fit the manifest's tagger") as info:
        load_pack(pack)
    assert "\n" not in str(info.value)


def test_missing_file_refused(tiny_codec_pack: Path, tmp_path: Path) -> None:
    pack = _copy(tiny_codec_pack, tmp_path)
    (pack / CODEC_FILE).unlink()
    with pytest.raises(PackError, match="missing file"):
        load_pack(pack)
    with pytest.raises(PackError, match="not a pack folder"):
        load_pack(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PackError, match="missing file"):
        load_pack(tmp_path / "empty")


def test_pickle_never_loaded(tiny_mel_pack: Path, tmp_path: Path) -> None:
    """A pickle renamed to .safetensors (with a matching hash) is refused without being unpickled."""
    pack = _copy(tiny_mel_pack, tmp_path)
    torch.save({"x": torch.zeros(2)}, pack / TAGGER_FILE)
    m = json.loads((pack / MANIFEST).read_text())
    m["files"][TAGGER_FILE] = sha256_file(pack / TAGGER_FILE)
    (pack / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(PackError, match="not a readable safetensors file"):
        load_pack(pack)


def test_save_refuses_mismatched_state(tiny_mel_pack: Path, tmp_path: Path) -> None:
    pack = load_pack(tiny_mel_pack)
    with pytest.raises(PackError):
        save_pack(
            tmp_path / "bad",
            name="bad",
            tagger_cfg=TaggerConfig(width=0.2, frontend="mel"),
            tagger_state=pack.tagger_state,
            labels=pack.info.labels,
            trusted=list(pack.info.trusted),
            window=pack.window,
            licence="MIT",
            provenance={},
        )
    assert not (tmp_path / "bad").exists()


def test_teacher_pack(teacher_pack: Path) -> None:
    pack = load_pack(teacher_pack)
    assert pack.info.labels[0] == "Speech" and len(pack.info.labels) == 527
    assert pack.tagger_cfg.width == 0.4 and pack.tagger_cfg.frontend == "mel"
    assert (
        pack.info.provenance["sha256"] == "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c"
    )
    assert "MIT" in pack.info.licence


def test_labels_file_variant(tiny_mel_pack: Path, tmp_path: Path) -> None:
    """Labels may live in a hashed JSON file inside the pack instead of the manifest."""
    pack = _copy(tiny_mel_pack, tmp_path)
    m = json.loads((pack / MANIFEST).read_text())
    labels = m.pop("labels")
    (pack / "labels.json").write_text(json.dumps(labels))
    m["labels_file"] = "labels.json"
    m["files"]["labels.json"] = sha256_file(pack / "labels.json")
    (pack / MANIFEST).write_text(json.dumps(m))
    loaded = load_pack(pack)
    assert loaded.info.labels == tuple(labels)
    assert loaded.info.pack_id == load_pack(tiny_mel_pack).info.pack_id  # the id covers weights only
    (pack / "labels.json").write_text(json.dumps(labels[::-1]))
    with pytest.raises(PackError, match="sha256 mismatch"):
        load_pack(pack)
    m["labels_file"] = "../outside.json"
    (pack / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(PackError, match="bad labels_file"):
        load_pack(pack)


def test_codec_pack_leaves_out_training_buffers(tiny_codec_pack: Path) -> None:
    from models.codec.codec import Codec, CodecError, complete_state, inference_state

    saved = load_file(str(tiny_codec_pack / CODEC_FILE))
    assert not any(k.endswith((".embed_avg", ".cluster_size")) for k in saved)
    assert any(k.endswith(".codebook.embed") for k in saved)
    pack = load_pack(tiny_codec_pack)
    assert pack.codec is not None
    full = complete_state(saved)
    assert inference_state(full).keys() == saved.keys()
    x = torch.randn(1, 4800) * 0.1
    assert torch.equal(pack.codec.encode(x), Codec.from_state(pack.codec.cfg, full).encode(x))
    half = dict(full)
    del half[next(k for k in full if k.endswith(".embed_avg"))]  # one buffer missing: not a pack state
    with pytest.raises(CodecError):
        Codec.from_state(pack.codec.cfg, half)


def test_shipped_default_pack_is_small_complete_and_loads() -> None:
    pack_dir = Path(__file__).resolve().parents[1] / "resources" / "packs" / "default"
    if not (pack_dir / MANIFEST).is_file():
        pytest.skip("no default pack in this checkout")
    assert sum(f.stat().st_size for f in pack_dir.iterdir()) <= 20_000_000  # the 20 MB budget
    m = json.loads((pack_dir / MANIFEST).read_text())
    assert m["licence"] and (pack_dir / "README.md").is_file()
    for part in ("codec", "tagger"):
        assert "train " + part in m["provenance"][part]["command"]
        assert m["provenance"][part]["data"]
    pack = load_pack(pack_dir)  # strict: hashes and shapes checked
    assert pack.codec is not None and len(pack.info.labels) == 527


def test_half_precision_tagger_weights(tiny_mel_pack: Path, tmp_path: Path) -> None:
    """A pack may store its tagger as float16 (room for a wider tagger): it loads into float32 modules
    and tags within a small tolerance of the float32 pack."""
    import numpy as np

    from models.tagging.engine import Engine
    from models.training.outputs import half_state

    pack = load_pack(tiny_mel_pack)
    half = half_state(dict(pack.tagger_state))
    assert all(v.dtype in (torch.float16, torch.int64) for v in half.values())
    out = save_pack(
        tmp_path / "half",
        name="half",
        tagger_cfg=pack.tagger_cfg,
        tagger_state=half,
        labels=pack.info.labels,
        trusted=list(pack.info.trusted),
        window=pack.window,
        licence="MIT",
        provenance={"tagger_weights_dtype": "float16"},
    )
    size = (out / TAGGER_FILE).stat().st_size
    assert size < 0.6 * (tiny_mel_pack / TAGGER_FILE).stat().st_size
    loaded = load_pack(out)
    assert all(p.dtype == torch.float32 for p in loaded.tagger.parameters())
    audio = np.random.default_rng(0).standard_normal((2, 32000)).astype(np.float32) * 0.1
    full_probs, _ = Engine.load(tiny_mel_pack).infer(audio)
    half_probs, _ = Engine.load(out).infer(audio)
    assert np.max(np.abs(full_probs - half_probs)) < 2e-3
