"""Codec (EnCodec via transformers) and the official-checkpoint fetcher, with tiny random models only."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from models.codec.codec import Codec, CodecError, num_quantizers
from models.codec.official import CodecUnavailable, codec_config_from_hf, official_codec
from models.config import CodecConfig
from tests.conftest import tiny_codec_config


@pytest.fixture(scope="module")
def tiny() -> Codec:
    torch.manual_seed(0)
    return Codec(tiny_codec_config())


@pytest.mark.parametrize("n", [1, 319, 320, 321, 4000])
@pytest.mark.parametrize("bandwidth", [1.5, 3.0])
def test_shapes_at_bandwidths(tiny: Codec, n: int, bandwidth: float) -> None:
    audio = torch.randn(2, n) * 0.1
    codes = tiny.encode(audio, bandwidth)
    t = math.ceil(n / 320)
    n_q = num_quantizers(tiny.cfg, bandwidth)
    assert n_q == {1.5: 3, 3.0: 6}[bandwidth]  # 64-entry books: 6 bits × 75 frames/s = 450 bit/s each
    assert codes.shape == (2, n_q, t) and codes.dtype == torch.int64
    assert int(codes.min()) >= 0 and int(codes.max()) < 64
    latent = tiny.unembed(codes)
    assert latent.shape == (2, 128, t) and latent.dtype == torch.float32
    assert tiny.decode(codes).shape == (2, t * 320)
    assert torch.equal(tiny.latent(audio, bandwidth), latent)


def test_unembed_sums_codebook_vectors(tiny: Codec) -> None:
    codes = tiny.encode(torch.randn(1, 2400) * 0.1)
    expected = sum(
        layer.codebook.embed[codes[0, q]].T for q, layer in enumerate(tiny.quantizer.layers[: codes.shape[1]])
    )
    assert torch.allclose(tiny.unembed(codes)[0], expected, atol=1e-5)


def test_official_layout_is_75_fps() -> None:
    cfg = CodecConfig()
    assert cfg.hop_length == 320 and cfg.frame_rate == 75.0
    assert num_quantizers(cfg, 6.0) == 8 and num_quantizers(cfg, 24.0) == 32
    torch.manual_seed(0)
    codec = Codec(cfg)  # random weights, ~15 M parameters
    codes = codec.encode(torch.randn(1, 2400) * 0.1)
    assert codes.shape == (1, 8, 8)
    assert codec.unembed(codes).shape == (1, 128, 8)


def test_fuse_keeps_outputs_and_state_round_trips(tiny: Codec, tmp_path: Path) -> None:
    audio = torch.randn(1, 3000) * 0.1
    ref_codes = tiny.encode(audio)
    ref_audio = tiny.decode(ref_codes)
    path = tmp_path / "codec.safetensors"
    save_file(tiny.export_state(), str(path))
    again = Codec.from_state(tiny.cfg, load_file(str(path)))
    assert torch.equal(again.encode(audio), ref_codes)
    fused = Codec.from_state(tiny.cfg, load_file(str(path))).fuse()
    assert fused.fused
    assert torch.equal(fused.encode(audio), ref_codes)
    assert torch.allclose(fused.decode(ref_codes), ref_audio, atol=1e-5)
    fused_state = fused.export_state()
    assert not any("parametrizations" in k for k in fused_state)
    from_fused = Codec.from_state(tiny.cfg, fused_state)  # fused spelling loads strictly too
    assert from_fused.fused and torch.equal(from_fused.encode(audio), ref_codes)


def test_legacy_weight_norm_names_load(tiny: Codec) -> None:
    legacy = {
        k.replace(".parametrizations.weight.original0", ".weight_g").replace(
            ".parametrizations.weight.original1", ".weight_v"
        ): v
        for k, v in tiny.export_state().items()
    }
    assert any(k.endswith(".weight_g") for k in legacy)
    audio = torch.randn(1, 1000) * 0.1
    assert torch.equal(Codec.from_state(tiny.cfg, legacy).encode(audio), tiny.encode(audio))


def test_wrong_state_refused(tiny: Codec) -> None:
    state = tiny.export_state()
    other = CodecConfig(
        num_filters=8, num_lstm_layers=1, codebook_size=64, target_bandwidths=(1.5, 3.0), bandwidth=3.0
    )
    with pytest.raises(CodecError):
        Codec.from_state(other, state)
    state.pop(next(iter(state)))
    with pytest.raises(CodecError):
        Codec.from_state(tiny.cfg, state)


def test_bad_inputs_refused(tiny: Codec) -> None:
    with pytest.raises(CodecError):
        tiny.encode(torch.zeros(1, 100), bandwidth=12.0)
    with pytest.raises(CodecError):
        tiny.unembed(torch.full((1, 2, 3), 64))
    with pytest.raises(CodecError):
        tiny.encode(torch.zeros(1, 1, 100))


# ------------------------------------------------------------------------------ official checkpoint
def _hub_files(codec: Codec, folder: Path) -> tuple[bytes, bytes]:
    """config.json (HF spelling) and model.safetensors (legacy weight_g/_v names, like the hub's)."""
    cfg = codec.cfg
    hf_cfg = {
        "model_type": "encodec",
        "sampling_rate": cfg.sampling_rate,
        "audio_channels": 1,
        "num_filters": cfg.num_filters,
        "upsampling_ratios": list(cfg.upsampling_ratios),
        "target_bandwidths": list(cfg.target_bandwidths),
        "codebook_size": cfg.codebook_size,
        "num_lstm_layers": cfg.num_lstm_layers,
        "chunk_length_s": None,
        "normalize": False,
    }
    state = {
        k.replace(".parametrizations.weight.original0", ".weight_g").replace(
            ".parametrizations.weight.original1", ".weight_v"
        ): v
        for k, v in codec.export_state().items()
    }
    save_file(state, str(folder / "w.safetensors"))
    return json.dumps(hf_cfg).encode(), (folder / "w.safetensors").read_bytes()


class _Resp:
    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        self._buf = io.BytesIO(body)
        self.headers = headers

    def read(self, n: int = -1) -> bytes:
        return self._buf.read(n)

    def close(self) -> None:
        pass


def test_official_fetch_via_file_url(tiny: Codec, tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    hub.mkdir()
    cfg_bytes, weights = _hub_files(tiny, hub)
    (hub / "config.json").write_bytes(cfg_bytes)
    (hub / "model.safetensors").write_bytes(weights)
    cache = tmp_path / "cache"
    seen: list[tuple[int, int]] = []
    codec = official_codec(
        lambda d, t: seen.append((d, t)), cache, base_url=hub.as_uri() + "/", bandwidth=3.0
    )
    assert seen[-1] == (len(weights), len(weights))
    audio = torch.randn(1, 2000) * 0.1
    assert codec.fused and torch.equal(codec.encode(audio), tiny.encode(audio))
    record = json.loads((cache / "fetched.json").read_text())
    assert record["model.safetensors"]["size"] == len(weights)
    # second use: from the cache, no download (a broken URL proves it)
    again = official_codec(None, cache, base_url="file:///nonexistent/", bandwidth=3.0)
    assert torch.equal(again.encode(audio), tiny.encode(audio))
    # a cached file changed after verification is refused
    (cache / "model.safetensors").write_bytes(weights[:-1] + bytes([weights[-1] ^ 1]))
    with pytest.raises(CodecUnavailable, match="changed since it was verified"):
        official_codec(None, cache, base_url="file:///nonexistent/")


def test_official_corrupted_download_refused(tiny: Codec, tmp_path: Path) -> None:
    import hashlib

    cfg_bytes, weights = _hub_files(tiny, tmp_path)
    declared = hashlib.sha256(weights).hexdigest()
    corrupted = bytearray(weights)
    corrupted[len(corrupted) // 2] ^= 0xFF

    def opener(url: str) -> _Resp:
        if url.endswith("config.json"):
            return _Resp(cfg_bytes, {"Content-Length": str(len(cfg_bytes))})
        return _Resp(
            bytes(corrupted), {"Content-Length": str(len(weights)), "X-Linked-Etag": f'"{declared}"'}
        )

    cache = tmp_path / "cache"
    with pytest.raises(CodecUnavailable, match="sha256 mismatch") as info:
        official_codec(None, cache, opener=opener)
    msg = str(info.value)
    assert "https://huggingface.co/facebook/encodec_24khz/resolve/main/model.safetensors" in msg
    assert str(cache / "model.safetensors") in msg and "\n" not in msg
    assert not (cache / "model.safetensors").exists()
    assert not list(cache.glob("*.part"))

    def truncating(url: str) -> _Resp:
        if url.endswith("config.json"):
            return _Resp(cfg_bytes, {})
        return _Resp(weights[:1000], {"Content-Length": str(len(weights))})

    with pytest.raises(CodecUnavailable, match="truncated"):
        official_codec(None, cache, opener=truncating)

    def garbage(url: str) -> _Resp:  # no declared hash: the strict load refuses it
        return _Resp(cfg_bytes if url.endswith("config.json") else b"not safetensors" * 10, {})

    with pytest.raises(CodecUnavailable, match="not a valid safetensors"):
        official_codec(None, cache, opener=garbage)
    assert not (cache / "model.safetensors").exists()


def test_official_offline_message(tmp_path: Path) -> None:
    def offline(url: str) -> _Resp:
        raise OSError("network unreachable")

    with pytest.raises(CodecUnavailable) as info:
        official_codec(None, tmp_path, opener=offline)
    msg = str(info.value)
    assert "network unreachable" in msg and str(tmp_path / "model.safetensors") in msg
    assert "resolve/main/model.safetensors" in msg
    with pytest.raises(CodecUnavailable, match="downloading is off"):
        official_codec(None, tmp_path, allow_download=False)


def test_hf_config_mapping() -> None:
    cfg = codec_config_from_hf({"model_type": "encodec", "target_bandwidths": [1.5, 3.0, 6.0, 12.0, 24.0]})
    assert cfg == CodecConfig()
    with pytest.raises(ValueError):
        codec_config_from_hf({"model_type": "encodec", "audio_channels": 2, "chunk_length_s": 1.0})
