"""The transformers-free tagging codec: same codes and latents as models.codec.codec.Codec, bit for
bit; as strict a pack check; Engine.load uses it, keeps no state dicts and still tags exactly as a full
pack does."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from models.codec.codec import Codec, CodecError
from models.codec.tagging_codec import (
    COMPRESS,
    DILATION_GROWTH,
    KERNEL,
    LAST_KERNEL,
    RESIDUAL_KERNEL,
    TaggingCodec,
    expected_shapes,
)
from models.packs.pack import CODEC_FILE, PackError, load_pack
from models.tagging.engine import Engine
from models.tagging.pipeline import tag_file
from tests.conftest import REPO_ROOT, _init_codebooks, tiny_codec_config

LENGTHS = (1, 7, 319, 320, 4801, 24000 + 13)


def _codec(cfg=None, seed: int = 0) -> Codec:  # noqa: ANN001
    torch.manual_seed(seed)
    codec = Codec(cfg or tiny_codec_config())
    _init_codebooks(codec)
    return codec


def test_constants_are_transformers_defaults() -> None:
    from models.codec.codec import encodec_config

    hf = encodec_config(tiny_codec_config())
    kernels = (hf.kernel_size, hf.last_kernel_size, hf.residual_kernel_size)
    assert kernels == (KERNEL, LAST_KERNEL, RESIDUAL_KERNEL)
    assert (hf.compress, hf.dilation_growth_rate) == (COMPRESS, DILATION_GROWTH)
    assert hf.pad_mode == "reflect" and hf.use_conv_shortcut


@pytest.mark.parametrize("extra", [{}, {"num_residual_layers": 2, "num_lstm_layers": 2}])
def test_expected_shapes_are_the_full_codecs(extra: dict) -> None:
    cfg = dataclasses.replace(tiny_codec_config(), **extra)
    codec = Codec(cfg)
    shapes = {k: tuple(v.shape) for k, v in codec.state_dict().items()}
    assert expected_shapes(cfg, fused=False) == shapes
    fused = {k: tuple(v.shape) for k, v in codec.fuse().state_dict().items()}
    assert expected_shapes(cfg, fused=True) == fused


@pytest.mark.parametrize("spelling", ["parametrized", "fused", "legacy"])
@pytest.mark.parametrize("extra", [{}, {"num_residual_layers": 2, "num_lstm_layers": 2}])
def test_same_codes_and_latents_as_the_full_codec(spelling: str, extra: dict) -> None:
    cfg = dataclasses.replace(tiny_codec_config(), **extra)
    full = _codec(cfg)
    state = full.export_state()
    if spelling == "fused":
        state = Codec.from_state(cfg, state).fuse().export_state()
    elif spelling == "legacy":
        state = {
            k.replace(".parametrizations.weight.original0", ".weight_g").replace(
                ".parametrizations.weight.original1", ".weight_v"
            ): v
            for k, v in state.items()
        }
    lite = TaggingCodec.from_state(cfg, state)
    ref = Codec.from_state(cfg, full.export_state()).fuse()  # what the engine ran before
    assert not any(k.startswith("decoder.") for k in lite.state_dict())
    g = torch.Generator().manual_seed(1)
    for n in LENGTHS:
        x = 0.3 * torch.randn(2, n, generator=g)
        with torch.inference_mode():  # how every caller runs it (autograd may pick other kernels)
            assert torch.equal(lite.embed(x), ref.embed(x)), n
        for bw in cfg.target_bandwidths:
            codes = ref.encode(x, bw)
            assert torch.equal(lite.encode(x, bw), codes), (n, bw)
            assert torch.equal(lite.unembed(codes), ref.unembed(codes)), (n, bw)
        assert torch.equal(lite.latent(x), ref.latent(x)), n
    assert (lite.n_q, lite.hop_length, lite.frame_rate) == (ref.n_q, ref.hop_length, ref.frame_rate)


def test_refuses_what_the_full_codec_refuses() -> None:
    cfg = tiny_codec_config()
    state = _codec(cfg).export_state()
    dec = next(k for k in state if k.startswith("decoder.") and k.endswith("original1"))
    bad_cases = [
        {k: v for k, v in state.items() if k != dec},  # a decoder weight missing
        {**state, dec: torch.zeros(3, 3, 3)},  # a decoder weight of the wrong shape
        {**state, "decoder.layers.99.conv.bias": torch.zeros(2)},  # an unknown key
        {k: v for k, v in state.items() if not k.endswith(".codebook.inited")},
    ]
    for bad in bad_cases:
        with pytest.raises(CodecError):
            TaggingCodec.from_state(cfg, bad)
        with pytest.raises(CodecError):
            Codec.from_state(cfg, bad)
    with pytest.raises(CodecError, match="codebooks"):
        TaggingCodec.from_state(cfg, state).unembed(torch.zeros(1, 9, 4, dtype=torch.long))


def test_tagging_only_pack_keeps_no_state_and_tags_identically(tiny_codec_pack: Path, tmp_path: Path) -> None:
    lean = load_pack(tiny_codec_pack, tagging_only=True)
    assert lean.tagger_state is None and lean.codec_state is None
    assert isinstance(lean.codec, TaggingCodec)
    full = load_pack(tiny_codec_pack)
    assert isinstance(full.codec, Codec) and full.tagger_state and full.codec_state
    import soundfile as sf

    rng = np.random.default_rng(0)
    path = tmp_path / "clip.wav"
    sf.write(path, (0.2 * rng.standard_normal(24000 * 12 + 77)).astype(np.float32), 24000)
    e_lean, e_full = Engine(lean, threads=1), Engine(full, threads=1)
    a, b = list(tag_file(e_lean, path)), list(tag_file(e_full, path))
    assert len(a) == len(b) > 20  # 12 s at 1 s / 0.5 s windows: two encode blocks
    for ra, rb in zip(a, b, strict=True):
        assert (ra.start, ra.end) == (rb.start, rb.end)
        assert np.array_equal(ra.probs, rb.probs) and np.array_equal(ra.embedding, rb.embedding)
    audio = rng.standard_normal((3, 5000)).astype(np.float32)
    assert np.array_equal(e_lean.encode(audio), e_full.encode(audio))
    assert np.array_equal(e_lean.infer(audio)[0], e_full.infer(audio)[0])


def test_tagging_only_pack_refuses_a_broken_decoder(tiny_codec_pack: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from safetensors.torch import save_file

    from models.packs.pack import MANIFEST, sha256_file

    broken = tmp_path / "broken"
    shutil.copytree(tiny_codec_pack, broken)
    state = load_file(str(broken / CODEC_FILE))
    del state[next(k for k in state if k.startswith("decoder."))]
    save_file(state, str(broken / CODEC_FILE))
    m = json.loads((broken / MANIFEST).read_text())
    m["files"][CODEC_FILE] = sha256_file(broken / CODEC_FILE)
    (broken / MANIFEST).write_text(json.dumps(m))
    for tagging_only in (False, True):
        with pytest.raises(PackError, match="does not fit the manifest's codec"):
            load_pack(broken, tagging_only=tagging_only)


def test_engine_load_does_not_import_transformers(tiny_codec_pack: Path) -> None:
    code = (
        "import sys; from models.tagging.engine import Engine; "
        f"e = Engine.load({str(tiny_codec_pack)!r}, threads=1); e.infer([0.0] * 4000); "
        "print(type(e.codec).__name__, 'transformers' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["TaggingCodec", "False"]
