"""Whole-corpus distillation data: teacher segment logits cached per clip (coverage counts, class-balanced
weights), per-clip codec codes, weighted segment sampling, and the broad held-out agreement figures."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from models.evaluation.agreement import (
    music_speech_above,
    music_speech_instead,
    teacher_agreement,
    top5_overlap,
)
from models.training.corpus_features import build_codes, codec_shape, load_distill_data
from models.training.coverage import (
    CorpusRow,
    boost_weights,
    coverage,
    parse_boosts,
    read_manifest,
    segment_weights,
    teacher_segment_logits,
)
from models.training.distill import DistillData, _batch


class CountingTeacher(torch.nn.Module):
    """A stand-in teacher whose logit for class c is the mean level of the input times (c + 1): real
    arithmetic on the audio, so cached and fresh values can be compared; counts the clips it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def forward(self, x: torch.Tensor) -> SimpleNamespace:
        self.seen += len(x)
        level = x.abs().mean(dim=1, keepdim=True)
        return SimpleNamespace(logits=level * torch.arange(1, 528, dtype=torch.float32) - 3.0)


def _corpus(root: Path, n: int) -> list[CorpusRow]:
    (root / "clips" / "s").mkdir(parents=True)
    rows = []
    for i in range(n):
        rel = f"clips/s/c{i:02d}.flac"
        amp = 0.05 + 0.1 * i
        sf.write(root / rel, (amp * np.sin(np.arange(240000) * 0.05)).astype(np.float32), 24000)
        rows.append(
            {"clip": rel, "source": "s", "domain": "environment", "split": "val" if i == 0 else "train"}
        )
    with (root / "manifest.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["clip", "source", "domain", "split"])
        w.writeheader()
        w.writerows(rows)
    return read_manifest(root)


def test_teacher_segments_are_cached_per_clip_and_counted(tmp_path: Path) -> None:
    rows = _corpus(tmp_path, 4)
    teacher = CountingTeacher()
    lg = teacher_segment_logits(tmp_path, rows, teacher, tmp_path / "cache")
    # five segments per clip; the whole clip only for the held-out one (row 0), the max elsewhere
    assert lg.shape == (4, 6, 527) and lg.dtype == np.float16 and teacher.seen == 4 * 5 + 1
    assert np.array_equal(lg[2, 5], lg[2, :5].max(axis=0))
    again = teacher_segment_logits(tmp_path, rows, teacher, tmp_path / "cache")
    assert teacher.seen == 21 and np.array_equal(lg, again)  # nothing recomputed
    (tmp_path / "cache" / (rows[2].clip + ".npy")).write_bytes(b"broken")
    teacher_segment_logits(tmp_path, rows, teacher, tmp_path / "cache")
    assert teacher.seen == 21 + 5  # only the damaged clip again
    cov = coverage(lg[:, :5], rows, thresholds=(0.3, 0.5))
    assert cov.n_train_segments == 15 and cov.n_held_segments == 5
    p = 1 / (1 + np.exp(-lg[1:, :5].astype(np.float32)))
    assert cov.train_counts[0].tolist() == (p >= 0.3).sum(axis=(0, 1)).tolist()
    assert cov.covered(0.3, min_segments=15) == int(((p >= 0.3).sum(axis=(0, 1)) >= 15).sum())


def test_a_reverse_teacher_worker_skips_what_the_other_wrote(tmp_path: Path) -> None:
    """Two ``train features`` workers split the teacher pass: the ``--reverse`` one starts at the end and
    skips every clip whose logits appeared after it listed its work (the forward worker wrote them)."""
    rows = _corpus(tmp_path, 4)
    forward = teacher_segment_logits(tmp_path, rows[:2], CountingTeacher(), tmp_path / "cache")
    rev = CountingTeacher()
    ahead = {"n": 0}

    def other_worker_writes_clip_1() -> bool:  # called once per chunk, before the chunk is read
        ahead["n"] += 1
        if ahead["n"] == 2:  # after the reverse worker's first chunk (clip 3), clip 2 appears on disk
            teacher_segment_logits(tmp_path, rows[2:3], CountingTeacher(), tmp_path / "cache")
        return False

    (tmp_path / "cache" / (rows[1].clip + ".npy")).unlink()  # clip 1 is left to do as well
    lg = teacher_segment_logits(
        tmp_path, rows, rev, tmp_path / "cache", chunk=1, reverse=True, should_stop=other_worker_writes_clip_1
    )
    assert rev.seen == 5 + 5  # clips 3 and 1 (training clips: five segments each); clip 2 was skipped
    fresh = teacher_segment_logits(tmp_path, rows, CountingTeacher(), tmp_path / "fresh")
    assert np.array_equal(lg, fresh) and np.array_equal(lg[0], forward[0])


def test_segment_weights_favour_rare_confident_classes() -> None:
    logits = np.full((10, 5, 527), -8.0, np.float32)
    logits[:, :, 0] = 4.0  # a frequent class on every segment
    logits[3, 2, 100] = 4.0  # a rare class on one segment
    w = segment_weights(logits, power=0.5)
    assert w.shape == (10, 5) and abs(w.mean() - 1.0) < 1e-5
    assert w[3, 2] > 5 * w[0, 0]
    data = DistillData(
        np.zeros((10, 1, 2, 50), np.int16),
        np.zeros((10, 1, 527), np.float16),
        logits[:, None].astype(np.float16),
        seg_weights=w,
    )
    rng = np.random.default_rng(0)
    hits = sum(int((b.logits[:, 100] > 0).sum()) for b in (_batch(data, rng, 64, 1.0) for _ in range(20)))
    share = hits / (64 * 20)
    expected = w[3, 2] / w.sum()
    assert share > 3 * (1 / 50) and abs(share - expected) < 0.05


def test_boosted_sources_take_their_share_of_the_draw() -> None:
    rows = [CorpusRow(f"c{i}", src, "speech", "train") for i, src in enumerate(["a", "a+aug", "b", "b", "c"])]
    w0 = np.ones((5, 5), np.float32)
    w0[4] = 3.0  # a rare class in the unboosted source keeps its balance weight
    w, share = boost_weights(w0, rows, parse_boosts(["a=4"]))
    assert abs(w.mean() - 1.0) < 1e-6 and w[0, 0] == w[1, 0] == pytest.approx(4 * w[2, 0])
    assert w[4, 0] == pytest.approx(3 * w[2, 0]) and share == pytest.approx(8 / (8 + 2 + 3))
    w2, _ = boost_weights(w0, rows, parse_boosts(["a+aug=2", "b=0.5"]))  # a derived source alone; below 1
    assert w2[0, 0] == pytest.approx(w2[2, 0] * 2) and w2[1, 0] == pytest.approx(w2[2, 0] * 4)
    for bad in (["a"], ["a=0"], ["a=-1"], ["a=nan"], ["=2"], ["a=x"], ["a=2", "a=3"]):
        with pytest.raises(ValueError, match="--boost-source"):
            parse_boosts(bad)
    with pytest.raises(ValueError, match="no training clip"):
        boost_weights(w0, rows, {"speech": 2.0})  # a misspelt source is refused, not ignored


def test_codes_per_clip_and_distill_data(tiny_codec_pack: Path, tmp_path: Path) -> None:
    from models.codec.codec import Codec
    from models.training.outputs import load_codec_dir

    cfg, state, _ = load_codec_dir(tiny_codec_pack)
    codec = Codec.from_state(cfg, state)
    rows = _corpus(tmp_path, 3)
    n_q, n_frames = codec_shape(codec)
    assert build_codes(tmp_path, rows, codec, tmp_path / "codes") == 3
    assert build_codes(tmp_path, rows, codec, tmp_path / "codes") == 0  # resumable: nothing left
    cached = np.stack([np.load(tmp_path / "codes" / (r.clip + ".npy")) for r in rows])
    audio = np.stack([sf.read(tmp_path / r.clip, dtype="float32")[0] for r in rows])
    with torch.inference_mode():  # the same batch encoded directly
        direct = codec.encode(torch.from_numpy(audio)).to(torch.int16).numpy()
    assert cached.shape == (3, n_q, n_frames) and np.array_equal(cached, direct)
    logits = teacher_segment_logits(tmp_path, rows, CountingTeacher(), tmp_path / "teacher_segments")
    data, w = load_distill_data(rows, logits, tmp_path / "codes", n_q, n_frames)
    assert data.codes.shape == (3, 1, n_q, n_frames) and data.seg_logits.shape == (3, 1, 5, 527)
    assert data.logits.shape == (3, 1, 527) and w.shape == (3, 5)


def test_corpus_codes_with_the_onnx_encoder_equal_the_training_codec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train features --per-clip`` codes the corpus with the pack's tagging codec and, where ONNX Runtime
    is installed, its exported encoder (the app's own backend): with the shipped codec the codes equal the
    training codec's. (A random test codec is not used: its codebooks have exact distance ties, where a
    1e-7 difference in the latent flips a code.)"""
    pytest.importorskip("onnxruntime")
    from app.commands.train_tagger import _code_codec
    from models.codec.codec import Codec
    from models.training.features import state_hash
    from models.training.outputs import load_codec_dir

    monkeypatch.setenv("ENCOTAG_ENCODER", "onnx")
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path / "home"))
    cfg, state, _ = load_codec_dir(Path(__file__).resolve().parents[1] / "resources" / "packs" / "default")
    fast = _code_codec(cfg, state, state_hash(state), 1)
    assert type(fast.encoder_backend).__name__ == "OrtEncoder"
    rows = _corpus(tmp_path, 3)
    build_codes(tmp_path, rows, fast, tmp_path / "codes")
    build_codes(tmp_path, rows, Codec.from_state(cfg, state), tmp_path / "codes-torch")
    for r in rows:
        assert np.array_equal(
            np.load(tmp_path / "codes" / (r.clip + ".npy")),
            np.load(tmp_path / "codes-torch" / (r.clip + ".npy")),
        )


def test_broad_agreement_figures() -> None:
    rng = np.random.default_rng(1)
    teacher = rng.random((40, 527)) * 0.4
    teacher[:20, 74] = 0.9  # dog on half the clips
    teacher[20:, 0] = 0.9  # speech on the other half
    pack = teacher.copy()
    pack[:10, 137] = 0.95  # the pack says Music on 10 dog clips
    assert music_speech_instead(pack, teacher) == 0.5
    assert top5_overlap(teacher, teacher) == 1.0 and 0.5 < top5_overlap(pack, teacher) < 1.0
    src = ["corpus:a"] * 30 + ["fsdd"] * 10
    agr = teacher_agreement(pack, teacher, src)
    assert agr.broad is not None and agr.broad.n_clips == 30
    assert agr.broad.ms_instead == 0.5 and agr.overall.n_clips == 40
    assert {c.index for c in agr.broad_per_class} >= {74}


def test_music_speech_above_the_app_threshold() -> None:
    """Among clips where the teacher gives Speech and Music both < 0.3, the share where the pack gives
    either >= 0.3: what a user sees as a false Music or Speech tag."""
    teacher = np.full((8, 527), 0.05)
    teacher[:2, 0] = 0.6  # speech on two clips: not counted, whatever the pack says
    teacher[2, 137] = 0.3  # music exactly at the threshold: not counted either
    pack = teacher.copy()
    pack[3, 137] = 0.31  # a false Music tag
    pack[4, 0] = 0.5  # a false Speech tag
    pack[5, 137] = 0.29  # below the threshold
    assert music_speech_above(pack, teacher) == pytest.approx(2 / 5)
    assert music_speech_above(pack[:2], teacher[:2]) is None
    broad = teacher_agreement(pack, teacher, ["corpus:a"] * 8).broad
    assert broad is not None and broad.ms_above == pytest.approx(2 / 5)


def test_coverage_command_with_the_real_teacher(tmp_path: Path) -> None:
    from app.cli import main
    from tests.conftest import require_shared

    teacher = require_shared("teachers", "efficientat_mn04_as")
    _corpus(tmp_path / "c", 3)
    out = tmp_path / "coverage.md"
    args = ["corpus", "coverage", str(tmp_path / "c"), "--teacher", str(teacher), "--out", str(out)]
    assert main([*args, "--max-clips", "1"]) == 0
    text = out.read_text(encoding="utf-8")
    assert "classes with >= 20 training segments at p >= 0.3" in text and "(2 clips)" in text
    assert "| threshold |" in text and "| s | 10 |" in text  # one training and one held-out clip
    assert len(list((tmp_path / "c" / "teacher_segments").rglob("*.npy"))) == 2


def test_per_clip_tagger_command(tiny_codec_pack: Path, tmp_path: Path) -> None:
    import json

    from app.cli import main
    from tests.conftest import require_shared

    teacher = require_shared("teachers", "efficientat_mn04_as")
    _corpus(tmp_path / "c", 3)
    out = tmp_path / "tagger"
    args = ["train", "tagger", "--per-clip", "--corpus", str(tmp_path / "c"), "--codec", str(tiny_codec_pack)]
    args += ["--teacher", str(teacher), "--out", str(out), "--steps", "3", "--eval-augs", "0"]
    assert main(args) == 0
    info = json.loads((out / "tagger.json").read_text(encoding="utf-8"))
    assert info["data"]["train_clips"] == 2 and info["data"]["heldout_clips"] == 1
    assert info["feature_cfg"]["per_clip"] and (out / "tagger.safetensors").is_file()
    assert len(list((tmp_path / "c" / "teacher_segments").rglob("*.npy"))) == 3
    quick = [*args[:-6], "--out", str(tmp_path / "tb"), "--steps", "1", "--eval-augs", "0", "--boost-source"]
    assert main([*quick, "nope=2"]) == 2  # refused before any training
    assert main([*quick, "s=2"]) == 0
    boosted = json.loads((tmp_path / "tb" / "tagger.json").read_text(encoding="utf-8"))
    assert boosted["feature_cfg"]["boost_source"] == {"s": 2.0} and boosted["data"]["boosted_share"] == 1.0
    assert info["data"][f"{tmp_path / 'c'}/train"]["sources"]["s"]["clips"] == 2  # per source, for the README
    # a pack built on a pack's codec keeps how that codec was trained (its provenance), and lists the
    # tagger's training sources
    import shutil

    codec_pack = tmp_path / "codec_pack"
    shutil.copytree(tiny_codec_pack, codec_pack)
    m = json.loads((codec_pack / "manifest.json").read_text(encoding="utf-8"))
    m["provenance"]["codec"] = {"command": "encotag train codec --steps 3", "data": {"x": {"clips": 1}}}
    (codec_pack / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    pack = tmp_path / "pack"
    assert main(["train", "pack", "--codec", str(codec_pack), "--tagger", str(out), "--out", str(pack)]) == 0
    prov = json.loads((pack / "manifest.json").read_text(encoding="utf-8"))["provenance"]
    assert prov["codec"]["command"] == "encotag train codec --steps 3" and prov["codec"]["data"] == {
        "x": {"clips": 1}
    }
    assert "| s | 2 |" in (pack / "README.md").read_text(encoding="utf-8")
    # label offsets fitted on the training segments: only the head's bias moves, by the recorded offsets,
    # and the pack keeps the record
    from safetensors.torch import load_file

    cal = tmp_path / "tagger_cal"
    common = ["--per-clip", "--corpus", str(tmp_path / "c"), "--codec", str(tiny_codec_pack)]
    common += ["--teacher", str(teacher), "--tagger", str(out)]
    assert main(["train", "calibrate", *common, "--out", str(cal), "--labels", "Speech,Nope"]) == 2
    assert main(["train", "calibrate", *common, "--out", str(out)]) == 2  # never over its input
    assert main(["train", "calibrate", *common, "--out", str(cal)]) == 0
    record = json.loads((cal / "tagger.json").read_text(encoding="utf-8"))["calibration"]
    assert record["labels"] == [0, 137] and record["n_segments"] == 10  # Speech, Music; 2 clips x 5
    before, after = load_file(str(out / "tagger.safetensors")), load_file(str(cal / "tagger.safetensors"))
    moved = after["net.classifier.5.bias"] - before["net.classifier.5.bias"]
    assert moved[[0, 137]].tolist() == pytest.approx(record["offsets"], abs=1e-6)
    assert int((moved != 0).sum()) <= 2 and all(
        torch.equal(before[k], after[k]) for k in before if "5.bias" not in k
    )
    pack2 = tmp_path / "pack_cal"
    assert main(["train", "pack", "--codec", str(codec_pack), "--tagger", str(cal), "--out", str(pack2)]) == 0
    prov2 = json.loads((pack2 / "manifest.json").read_text(encoding="utf-8"))["provenance"]
    assert prov2["tagger"]["calibration"]["offsets"] == record["offsets"]
    assert "Label logit offsets fitted on training segments" in (pack2 / "README.md").read_text(
        encoding="utf-8"
    )
    # the weighted mean of the trained tagger and the calibrated one: a pack and a training folder are both
    # accepted; only the head's bias differs between them, so that is all the mean moves
    avg = tmp_path / "tagger_avg"
    feats = ["--per-clip", "--corpus", str(tmp_path / "c"), "--codec", str(tiny_codec_pack)]
    feats += ["--teacher", str(teacher), "--out", str(avg)]
    assert main(["train", "average", *feats, "--tagger", str(pack2), "--tagger", str(out)]) == 0
    assert main(["train", "average", *feats, "--tagger", str(out)]) == 2  # one tagger is no average
    mean = load_file(str(avg / "tagger.safetensors"))
    assert torch.allclose(
        mean["net.classifier.5.bias"], (before["net.classifier.5.bias"] + after["net.classifier.5.bias"]) / 2
    )
    record = json.loads((avg / "tagger.json").read_text(encoding="utf-8"))["average"]
    assert record["weights"] == [0.5, 0.5] and record["from"] == [str(pack2), str(out)]


def test_score_command_scores_held_out_originals_side_by_side(tiny_codec_pack: Path, tmp_path: Path) -> None:
    import json

    from app.cli import main
    from tests.conftest import require_shared

    teacher = require_shared("teachers", "efficientat_mn04_as")
    corpus = tmp_path / "c"
    _corpus(corpus, 4)
    # clip 1 becomes a held-out augmented copy of clip 0's recording: trained on by neither, scored only in
    # the pooled trusted-label figures, never in the broad segments (as in `encotag eval`)
    with (corpus / "manifest.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rows[1] |= {"source": "s+aug", "split": "val"}
    with (corpus / "manifest.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    feats = ["--per-clip", "--corpus", str(corpus), "--codec", str(tiny_codec_pack)]
    feats += ["--teacher", str(teacher)]
    tagger = tmp_path / "t"
    assert main(["train", "tagger", *feats, "--out", str(tagger), "--steps", "3", "--eval-augs", "0"]) == 0
    out = tmp_path / "score"
    args = ["train", "score", *feats, "--out", str(out), "--tagger", str(tagger), "--tagger", str(tagger)]
    assert main(args) == 0
    record = json.loads((out / "score.json").read_text(encoding="utf-8"))
    a, b = record["rows"]
    assert a == b  # the same tagger twice: the same figures
    assert a["segments"] == 5  # the original held-out clip's five 2-s segments, not its copy's
    assert 0.0 <= a["top1"] <= 1.0 and 0.0 <= a["top5"] <= 1.0 and isinstance(a["trusted"], int)
    assert "| tagger | classes | mAP |" in (out / "score.md").read_text(encoding="utf-8")
    assert main([*args[:-2], "--tagger", str(tmp_path / "missing")]) == 2  # refused before any data load
    # the fit: the same figures on original training clips (the two left after the copy and the held-out one)
    originals = [r for r in rows if r["split"] == "train" and not r["source"].endswith("+aug")]
    assert main([*args, "--fit-clips", "-1"]) == 2  # refused before any data load
    assert main([*args, "--fit-clips", "9"]) == 0
    record = json.loads((out / "score.json").read_text(encoding="utf-8"))
    a, b = record["rows"]
    assert a["fit"] == b["fit"] and a["fit"]["segments"] == 5 * len(originals) > 0
    assert {k: a[k] for k in a if k != "fit"} == {k: b[k] for k in b if k != "fit"}
    assert "The fit:" in (out / "score.md").read_text(encoding="utf-8")
