"""Converting an EfficientAT-style teacher folder into a mel pack, on a small fake teacher the test builds.

The fake teacher has the real layout (mn04 state dict saved by ``torch.save``, AudioSet-style label CSV
with rows out of order), so these tests run without ``../shared``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from models.config import TaggerConfig
from models.nets.tagger import Tagger
from models.packs.pack import MANIFEST, PackError, load_pack, sha256_file
from models.packs.teacher_pack import TEACHER_FILE, TEACHER_LABELS, build_teacher_pack, teacher_labels

N_CLASSES = 5


def _write_labels(path: Path, indices: list[int]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "mid", "display_name"])
        for i in indices:
            w.writerow([i, f"/m/{i:04d}", f"class {i}"])


@pytest.fixture()
def fake_teacher(tmp_path: Path) -> tuple[Path, Tagger]:
    torch.manual_seed(0)
    model = Tagger(TaggerConfig(width=0.4, num_classes=N_CLASSES, frontend="mel")).eval()
    tdir = tmp_path / "teacher"
    tdir.mkdir()
    torch.save(model.net.state_dict(), tdir / TEACHER_FILE)  # EfficientAT names: no "net." prefix
    _write_labels(tdir / TEACHER_LABELS, [3, 0, 4, 1, 2])
    return tdir, model


def test_teacher_pack_loads_strictly_and_matches_the_teacher(fake_teacher, tmp_path: Path) -> None:
    tdir, model = fake_teacher
    out = build_teacher_pack(tdir, tmp_path / "pack")
    pack = load_pack(out)
    assert pack.info.labels == tuple(f"class {i}" for i in range(N_CLASSES))  # index order, not file order
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["provenance"]["sha256"] == sha256_file(tdir / TEACHER_FILE)
    assert manifest["frontend"] == "mel" and "MIT" in manifest["licence"]
    x = torch.randn(2, pack.info.sample_rate)
    with torch.inference_mode():
        want, _ = model(x)
        got, _ = pack.tagger.eval()(x)
    torch.testing.assert_close(got, want)


def test_labels_need_contiguous_indices(tmp_path: Path) -> None:
    _write_labels(tmp_path / "gap.csv", [0, 1, 3])
    with pytest.raises(PackError, match="indices are not 0..n-1"):
        teacher_labels(tmp_path / "gap.csv")


def test_missing_or_damaged_weights_are_refused_and_nothing_is_written(fake_teacher, tmp_path: Path) -> None:
    tdir, _ = fake_teacher
    (tdir / TEACHER_FILE).write_bytes(b"not a checkpoint at all")
    with pytest.raises(PackError) as info:
        build_teacher_pack(tdir, tmp_path / "damaged")
    assert TEACHER_FILE in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "damaged").exists()
    (tdir / TEACHER_FILE).unlink()
    with pytest.raises(PackError, match="missing teacher weights"):
        build_teacher_pack(tdir, tmp_path / "missing")
    assert not (tmp_path / "missing").exists()
