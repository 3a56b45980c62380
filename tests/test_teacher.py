"""The EfficientAT mn04_as teacher: strict load and EfficientAT's reference outputs on its sample clips."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
import torch

from models.nets.tagger import load_teacher_state, teacher_tagger
from models.resources import audioset_labels

TEACHER_DIR = Path(__file__).resolve().parent.parent / ".." / "shared" / "teachers" / "efficientat_mn04_as"
CKPT = TEACHER_DIR / "mn04_as_mAP_432.pt"

# EfficientAT's inference on the whole clip (32 kHz mono): (label, probability) in rank order.
EXPECTED = {
    "speech.flac": [("Speech", 0.818)],
    "music.flac": [("Music", 0.598)],
    "typing.flac": [("Computer keyboard", 0.891), ("Typing", 0.871)],
}


@pytest.fixture(scope="module")
def teacher():  # type: ignore[no-untyped-def]
    if not CKPT.is_file():
        pytest.skip(f"../shared not present: teacher checkpoint {CKPT}")
    return teacher_tagger(CKPT)


def test_strict_load_and_size(teacher) -> None:  # type: ignore[no-untyped-def]
    state = load_teacher_state(CKPT)
    assert set(state) == set(teacher.state_dict())
    assert sum(p.numel() for p in teacher.parameters()) == 983_599
    assert not teacher.training
    assert teacher.embedding_size == 320


@pytest.mark.parametrize("clip", sorted(EXPECTED))
def test_reference_outputs(teacher, clip: str) -> None:  # type: ignore[no-untyped-def]
    path = TEACHER_DIR / clip
    if not path.is_file():
        pytest.skip(f"../shared not present: sample clip {path}")
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    assert sr == 32000
    x = torch.from_numpy(audio.mean(axis=1))[None]
    with torch.inference_mode():
        out = teacher(x)
    probs = torch.sigmoid(out.logits[0])
    labels = audioset_labels()
    order = torch.argsort(probs, descending=True)
    for rank, (label, expected) in enumerate(EXPECTED[clip]):
        idx = int(order[rank])
        assert labels[idx] == label
        assert float(probs[idx]) == pytest.approx(expected, abs=0.01)
    assert out.embedding.shape == (1, 320)
    assert torch.isfinite(out.embedding).all()


def test_optimized_teacher_matches(teacher) -> None:  # type: ignore[no-untyped-def]
    path = TEACHER_DIR / "typing.flac"
    if not path.is_file():
        pytest.skip(f"../shared not present: sample clip {path}")
    audio, _ = sf.read(path, dtype="float32", frames=96000)
    x = torch.from_numpy(audio)[None]
    fast = teacher_tagger(CKPT).optimize_for_inference()
    with torch.inference_mode():
        ref, out = teacher(x), fast(x)
    assert torch.allclose(torch.sigmoid(out.logits), torch.sigmoid(ref.logits), atol=1e-4)
    assert torch.allclose(out.embedding, ref.embedding, atol=1e-4)
