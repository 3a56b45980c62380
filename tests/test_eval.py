"""Evaluation harness: probes, tasks, cache, agreement, mel baseline, pitch set, report, ``encotag eval``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.evaluation.agreement import heldout_clips, teacher_agreement
from models.evaluation.cache import EmbeddingCache, Entry
from models.evaluation.probe import probe_task
from models.evaluation.tasks import Task, TaskError, builtin_tasks, load_task, subsample

from .conftest import require_shared

SR = 16000


def _toy_task(n_per_class: int = 30, classes: int = 3, with_test: bool = True) -> tuple[np.ndarray, Task]:
    """Gaussian blobs in 16 dims, far apart: linearly separable."""
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 6, size=(classes, 16))
    X, labels, splits = [], [], []
    for c in range(classes):
        for i in range(n_per_class):
            X.append(centres[c] + rng.normal(0, 1, 16))
            labels.append(f"c{c}")
            splits.append("test" if with_test and i % 3 == 0 else "train")
    n = len(labels)
    task = Task(
        "toy", "other", Path("."), tuple(Path(f"{i}.flac") for i in range(n)), tuple(labels), tuple(splits)
    )
    if not with_test:
        from models.evaluation.tasks import _stratified_folds

        task = Task(
            task.name,
            task.domain,
            task.root,
            task.paths,
            task.labels,
            task.splits,
            5,
            tuple(_stratified_folds(labels, 5, 0)),
        )
    return np.asarray(X, np.float32), task


def test_probe_reaches_high_accuracy_on_separable_toy_set() -> None:
    X, task = _toy_task()
    res = probe_task(X, task, seed=0)
    assert res.accuracy >= 0.95
    assert res.n_test == 30 and res.n_train == 60
    assert res.chosen_c[0] in (0.01, 0.1, 1.0, 10.0)
    assert probe_task(X, task, seed=0) == res  # deterministic


def test_probe_fails_on_random_labels_and_cv_folds_work() -> None:
    X, task = _toy_task(with_test=False)
    res = probe_task(X, task)
    assert len(res.fold_accuracies) == 5 and res.accuracy >= 0.95
    rng = np.random.default_rng(0)
    noise = rng.normal(size=X.shape).astype(np.float32)
    assert probe_task(noise, task).accuracy < 0.7  # chance is 1/3
    with pytest.raises(ValueError, match="does not match"):
        probe_task(X[:10], task)


def _tone(freq: float, seconds: float = 0.5, sr: int = SR, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.normal(size=t.size)).astype(np.float32)


def _write_tone_set(
    root: Path, freqs=(300.0, 1200.0, 4000.0), per_class: int = 8, test_split: bool = True
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for c, f in enumerate(freqs):
        for i in range(per_class):
            name = f"tone_{c}_{i}.flac"
            sf.write(root / name, _tone(f * (1 + 0.01 * i), seed=10 * c + i), SR, subtype="PCM_16")
            split = "test" if test_split and i % 4 == 0 else "train"
            rows.append(
                {
                    "file": name,
                    "label": f"f{c}",
                    "split": split,
                    "source_file": name,
                    "license": "CC0-1.0",
                    "speaker": f"s{i % 2}",
                }
            )
    with open(root / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root


def test_load_task_layout_filters_and_errors(tmp_path: Path) -> None:
    root = _write_tone_set(tmp_path / "tones")
    task = load_task(root, domain="music")
    assert task.name == "tones" and len(task) == 24 and task.classes == ("f0", "f1", "f2")
    assert task.splits.count("test") == 6 and task.folds == 0
    spk = load_task(root, label_column="speaker")
    assert spk.classes == ("s0", "s1")
    with pytest.raises(TaskError, match="fewer than 2 classes"):
        load_task(root, min_per_class=9)
    with pytest.raises(TaskError, match="no 'nope' column"):
        load_task(root, label_column="nope")
    (root / "tone_0_1.flac").unlink()
    with pytest.raises(TaskError, match="missing"):
        load_task(root)
    with pytest.raises(TaskError, match="not found"):
        load_task(tmp_path / "absent")
    # no test split → stratified CV folds, every class in every fold
    cv = load_task(_write_tone_set(tmp_path / "cv", per_class=5, test_split=False), cv_folds=5)
    assert cv.folds == 5
    for f in range(5):
        assert sorted(lab for lab, k in zip(cv.labels, cv.fold_ids, strict=True) if k == f) == [
            "f0",
            "f1",
            "f2",
        ]


def test_subsample_is_deterministic_and_stratified() -> None:
    _, task = _toy_task(n_per_class=40)
    a, b = subsample(task, 30, seed=3), subsample(task, 30, seed=3)
    assert a == b and 25 <= len(a) <= 36
    assert set(a.labels) == set(task.labels) and "test" in a.splits and "train" in a.splits


def test_cache_roundtrip_and_corrupt_entry(tmp_path: Path) -> None:
    audio = tmp_path / "a.flac"
    sf.write(audio, _tone(440.0), SR)
    cache = EmbeddingCache(tmp_path / "cache")
    assert cache.get("emb-1", audio) is None
    entry = Entry(np.arange(4, dtype=np.float32), None, 0.25, 0.5)
    cache.put("emb-1", audio, entry)
    got = cache.get("emb-1", audio)
    assert got is not None and np.array_equal(got.embedding, entry.embedding) and got.probs is None
    assert got.seconds == 0.25 and got.duration == 0.5
    assert cache.get("emb-2", audio) is None  # keyed by embedder
    files = list((tmp_path / "cache").rglob("*.npz"))
    assert len(files) == 1
    files[0].write_bytes(b"not an npz")
    assert cache.get("emb-1", audio) is None  # corrupt → miss, not a crash
    assert EmbeddingCache(None).get("emb-1", audio) is None


def test_teacher_agreement_metrics() -> None:
    rng = np.random.default_rng(0)
    teacher = rng.uniform(0, 0.4, size=(40, 527))
    teacher[:, :8] = rng.uniform(0, 1, size=(40, 8))  # 8 classes with ~20 positives each
    teacher[:, 8] = np.r_[np.ones(3), np.zeros(37)]  # 3 positives: not scored
    sources = ["a"] * 20 + ["b"] * 20
    perfect = teacher_agreement(teacher, teacher, sources)
    assert perfect.overall.map == pytest.approx(1.0) and perfect.overall.top1 == 1.0
    assert set(perfect.per_source) == {"a", "b"}
    assert perfect.overall.n_classes == 8
    assert [c.index for c in perfect.per_class] == list(range(8))
    for c in perfect.per_class:
        pos = teacher[:, c.index] >= 0.5
        assert c.ap == pytest.approx(1.0) and c.positives == int(pos.sum())
        n_a = int(pos[:20].sum())
        assert (c.top_source, c.top_source_positives) == (
            ("a", n_a) if n_a >= pos.sum() - n_a else ("b", int(pos.sum()) - n_a)
        )
    noisy = teacher_agreement(rng.uniform(size=teacher.shape), teacher, sources)
    assert noisy.overall.map is not None and noisy.overall.map < 0.9 and noisy.overall.top1 < 0.5
    none = teacher_agreement(np.zeros((3, 527)), np.zeros((3, 527)), ["a"] * 3)
    assert none.overall.map is None and none.overall.n_classes == 0 and none.per_class == ()


def test_heldout_clips_reads_corpus_val_and_test_splits(tmp_path: Path) -> None:
    root = _write_tone_set(tmp_path / "tones")
    task = load_task(root)
    corpus = tmp_path / "corpus"
    (corpus / "clips").mkdir(parents=True)
    sf.write(corpus / "clips" / "v.flac", _tone(500.0), SR)
    sf.write(corpus / "clips" / "t.flac", _tone(500.0), SR)
    with open(corpus / "manifest.csv", "w", encoding="utf-8") as fh:
        fh.write("clip,source,split\nclips/t.flac,x,train\nclips/v.flac,x,val\nclips/gone.flac,x,val\n")
    clips = heldout_clips([task, task], corpus)
    assert clips[0] == (corpus / "clips" / "v.flac", "corpus:x")
    assert len(clips) == 1 + 6  # missing corpus file skipped; shared test clips listed once
    assert len(heldout_clips([task], tmp_path / "nothing")) == 6


def test_mel_baseline_and_runner_end_to_end(tmp_path: Path) -> None:
    from models.evaluation.embedders import MelStatsEmbedder, load_clip
    from models.evaluation.runner import evaluate

    task = load_task(_write_tone_set(tmp_path / "tones"), domain="music")
    emb = MelStatsEmbedder()
    x = load_clip(task.paths[0], emb.sample_rate)
    assert x.dtype == np.float32 and abs(x.shape[0] - 16000) <= 1  # 0.5 s @ 16 kHz → 32 kHz
    e, probs = emb.embed(x)["melstats"]
    assert e.shape == (256,) and probs is None and np.isfinite(e).all()
    assert emb.embed(np.zeros(10, np.float32))["melstats"][0].shape == (256,)  # shorter than one STFT frame
    cache = EmbeddingCache(tmp_path / "cache")
    rows = evaluate([emb], [task], cache)
    assert rows[0].probes["tones"].accuracy >= 0.95 and rows[0].seconds_per_hour is not None
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == len(task)
    again = evaluate([emb], [task], cache)  # from the cache: same figures
    assert again[0].probes == rows[0].probes


def test_bad_clip_is_left_out_not_fatal(tmp_path: Path) -> None:
    from models.evaluation.embedders import MelStatsEmbedder
    from models.evaluation.runner import evaluate

    root = _write_tone_set(tmp_path / "tones")
    (root / "tone_1_3.flac").write_bytes(b"garbage")
    rows = evaluate([MelStatsEmbedder()], [load_task(root)], EmbeddingCache(None))
    assert rows[0].failed["tones"] == 1 and rows[0].probes["tones"].n_train == 17


def test_pack_rows_and_agreement(tmp_path: Path, tiny_mel_pack: Path, teacher_pack: Path) -> None:
    from models.evaluation.embedders import PackEmbedder
    from models.evaluation.report import REFERENCE, ReportMeta, render_markdown, results_json
    from models.evaluation.runner import evaluate

    task = load_task(_write_tone_set(tmp_path / "tones", per_class=6))
    teacher = PackEmbedder(teacher_pack, name="teacher", final_view=True)
    tiny = PackEmbedder(tiny_mel_pack, name="tiny")
    assert [v.key for v in teacher.views] == ["scene", "final"] and teacher.views[1].embedding_size == 384
    rows = evaluate(
        [teacher, tiny],
        [task],
        EmbeddingCache(tmp_path / "c"),
        teacher_id=teacher.views[0].id,
        heldout=heldout_clips([task], None),
    )
    assert [r.name for r in rows] == ["teacher", "teacher, final features", "tiny"]
    assert [r.embedding_size for r in rows] == [320, 384, tiny.views[0].embedding_size]
    assert rows[0].is_teacher and rows[0].agreement is None and rows[1].agreement is None
    ag = rows[2].agreement
    assert ag is not None and ag.overall.n_clips == 6 and 0.0 <= ag.overall.top1 <= 1.0
    # the hook's final features are the pooled last map of the same pass: equal to a direct computation
    import torch

    from models.evaluation.embedders import load_clip

    x = load_clip(task.paths[0], 32000)
    direct = teacher.engine.tagger.net.forward_maps(
        teacher.engine.tagger.representation(torch.from_numpy(x)[None])[0]
    )
    want = direct[0].mean(dim=(2, 3))[0].detach().numpy()
    np.testing.assert_allclose(teacher.embed(x)["final"][0], want, rtol=1e-4, atol=1e-5)
    meta = ReportMeta(date="2026-01-01", commit="abc1234", command="encotag eval", machine="test")
    text = render_markdown(rows, [task], meta, "## Protocol")
    assert "| tiny |" in text and "(reference)" in text and "abc1234" in text
    data = json.loads(results_json(rows, [task], meta))
    assert data["rows"][0]["accuracy"]["tones"] == rows[0].probes["tones"].accuracy
    assert len(data["rows"][2]["agreement"]["per_class"]) == len(ag.per_class) == ag.overall.n_classes
    if ag.per_class:  # the class table names AudioSet labels, weakest first
        from models.resources import audioset_labels

        weakest = min(ag.per_class, key=lambda c: (c.ap, c.index))
        assert "Per class" in text and f"| {audioset_labels()[weakest.index]} |" in text
    assert set(REFERENCE) == {"teacher", "melstats"}


def test_pitch_set_renders_small_spec(tmp_path: Path) -> None:
    from models.evaluation.pitch import PitchSpec, build_pitch_set, pitch_unavailable

    reason = pitch_unavailable()
    if reason:
        pytest.skip(f"pitch task needs fluidsynth: {reason}")
    spec = PitchSpec("pitch-test", train_programs=(0,), test_programs=(1,), pitches=(60, 67))
    root = build_pitch_set(tmp_path, spec)
    task = load_task(root, domain="music")
    assert task.classes == ("60", "67") and sorted(task.splits) == ["test", "test", "train", "train"]
    info = sf.info(str(task.paths[0]))
    assert info.samplerate == 32000 and info.frames == 40000  # 0.75 s note + 0.5 s tail
    assert build_pitch_set(tmp_path, spec) == root  # reused, not re-rendered


def test_eval_command_on_an_extra_task(tmp_path: Path) -> None:
    from app.cli import main

    root = _write_tone_set(tmp_path / "tones")
    out, js = tmp_path / "EVAL.md", tmp_path / "eval.json"
    code = main(
        [
            "eval",
            "--data",
            str(tmp_path / "nodata"),
            "--task",
            str(root),
            "--task-domain",
            "music",
            "--no-teacher",
            "--no-pitch",
            "--cache",
            str(tmp_path / "cache"),
            "--out",
            str(out),
            "--json",
            str(js),
            "--no-progress",
            "--corpus",
            str(tmp_path / "nocorpus"),
        ]
    )
    assert code == 0
    text = out.read_text(encoding="utf-8")
    assert "mel-statistics baseline" in text and "| tones |" in text
    data = json.loads(js.read_text(encoding="utf-8"))
    assert data["rows"][0]["accuracy"]["tones"] >= 0.95 and data["rows"][0]["embedding_size"] == 256
    assert (
        main(["eval", "--data", str(tmp_path / "nodata"), "--no-pitch", "--no-teacher", "--no-progress"]) == 2
    )


def test_builtin_tasks_on_shared_data() -> None:
    data = require_shared("data")
    tasks = {t.name: t for t in builtin_tasks(data)}
    assert list(tasks) == [
        "fsdd_digits",
        "fsdd_speaker",
        "speech_commands",
        "ravdess_emotion",
        "donateacry",
        "mod_sounds",
    ]
    assert len(tasks["fsdd_digits"]) == 3000 and tasks["fsdd_digits"].splits.count("test") == 300
    assert len(tasks["fsdd_speaker"].classes) == 6
    mod = tasks["mod_sounds"]
    assert mod.folds == 5 and len(mod.classes) == 8 and len(mod) == 49
    assert {t.domain for t in tasks.values()} == {"speech", "environment"}


def test_merge_report_keeps_hand_written_text() -> None:
    from models.evaluation.report import BEGIN_MARK, END_MARK, merge_report

    first = merge_report(None, "table v1")
    assert first.startswith(BEGIN_MARK) and "table v1" in first and first.rstrip().endswith(END_MARK)
    page = "# Intro\nhand-written\n\n" + first + "\n## Findings\nmore hand-written\n"
    second = merge_report(page, "table v2")
    assert "table v1" not in second and "table v2" in second
    assert second.startswith("# Intro\nhand-written") and second.endswith("## Findings\nmore hand-written\n")
    assert merge_report("no markers here", "t") == merge_report(None, "t")


def test_broad_agreement_on_two_second_segments(tmp_path: Path, tiny_mel_pack: Path) -> None:
    from models.evaluation.embedders import PackEmbedder
    from models.evaluation.report import ReportMeta, render_markdown, results_json
    from models.evaluation.runner import evaluate
    from models.evaluation.segments import cut_segments, segment_probs

    assert cut_segments(np.zeros(5 * SR, np.float32), SR).shape == (2, 2 * SR)
    assert cut_segments(np.ones(SR // 2, np.float32), SR).shape == (1, 2 * SR)  # padded to one segment
    corpus = tmp_path / "corpus"
    (corpus / "clips").mkdir(parents=True)
    rows = []
    for i, f in enumerate((300.0, 900.0, 2500.0)):
        sf.write(corpus / "clips" / f"v{i}.flac", _tone(f, seconds=5.0, seed=i), SR)
        rows.append(f"clips/v{i}.flac,rec,val,repo@1")
    for name in ("copy", "mix"):
        sf.write(corpus / "clips" / f"{name}.flac", _tone(440.0, seconds=5.0), SR)
    rows.append("clips/copy.flac,rec+aug,val,repo@1")  # augmented copies are not scored
    rows.append("clips/mix.flac,mix-real-events,val,mixture")  # nor mixtures (parts may be in training)
    text = "clip,source,split,origin\n" + "\n".join(rows) + "\n"
    (corpus / "manifest.csv").write_text(text, encoding="utf-8")
    task = load_task(_write_tone_set(tmp_path / "tones", per_class=4))
    heldout = heldout_clips([task], corpus)
    assert sum(s.startswith("corpus:") for _, s in heldout) == 3
    # the same network twice (the padded view has its own id): every segment must agree exactly
    teacher = PackEmbedder(tiny_mel_pack, name="teacher")
    pack = PackEmbedder(tiny_mel_pack, name="pack", pad_to_window=True)
    cache = EmbeddingCache(tmp_path / "c")
    out = evaluate([teacher, pack], [task], cache, teacher_id=teacher.views[0].id, heldout=heldout)
    ag = out[1].agreement
    assert ag is not None and ag.broad is not None and ag.broad.n_clips == 3
    seg = ag.broad_segments
    assert seg is not None and seg.n_clips == 3 * 2  # 5-s clips: two 2-s segments each
    assert seg.top1 == 1.0 and seg.top5 == 1.0
    # cached segment probabilities come back unchanged
    paths = [p for p, s in heldout if s.startswith("corpus:")]
    first = segment_probs(pack, paths, cache)
    assert all(v is not None and v.shape == (2, 527) for v in first.values())
    again = segment_probs(pack, paths, cache)
    assert all(np.array_equal(first[p], again[p]) for p in paths)  # type: ignore[arg-type]
    meta = ReportMeta(date="2026-01-01", commit="abc1234", command="encotag eval", machine="test")
    assert "| 2-s segments | 6 |" in render_markdown(out, [task], meta, "## Protocol")
    assert (
        json.loads(results_json(out, [task], meta))["rows"][1]["agreement"]["broad_segments"]["n_clips"] == 6
    )
