"""Cross-validation by recording and per-class threshold calibration of personal heads."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.heads.head_cv import Calibration, grouped_folds, recording_of, source_groups
from models.heads.head_file import head_payload, load_head
from models.heads.heads import train_head


def recordings(n_rec=24, per_rec=12, d=16, seed=0, signal=0.0):
    """Windows of ``n_rec`` recordings: each recording has its own random centre (what windows of one
    file share), the class adds ``signal`` along one direction. Labels alternate per recording."""
    rng = np.random.default_rng(seed)
    x, y, g = [], [], []
    direction = rng.normal(size=d)
    for r in range(n_rec):
        label = r % 2
        centre = rng.normal(0, 3, size=d) + signal * label * direction
        x.append(centre + 0.3 * rng.normal(size=(per_rec, d)))
        y += [label] * per_rec
        g += [r] * per_rec
    return np.concatenate(x).astype(np.float32), np.array(y), np.array(g)


def test_folds_never_split_a_recording_and_hold_every_class():
    _, y, g = recordings(n_rec=13)
    folds, single = grouped_folds(y, g, 5)
    assert single == [] and 2 <= len(folds) <= 5
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(y)))
    for f in folds:
        inside = set(g[f].tolist())
        outside = set(np.delete(g, f).tolist())
        assert not inside & outside  # no recording on both sides
        assert set(y[f].tolist()) == {0, 1}


def test_window_cv_is_optimistic_where_recording_cv_is_not():
    # labels carry no information beyond the recording: window folds memorise recordings
    x, y, g = recordings(signal=0.0)
    _, by_window = train_head(x, y, ["a", "b"], c_grid=(10.0,))
    _, by_rec = train_head(x, y, ["a", "b"], c_grid=(10.0,), groups=g)
    assert by_window.grouping == "window" and by_rec.grouping == "recording"
    assert by_window.cv_accuracy > 0.9
    assert by_rec.cv_accuracy < 0.75  # chance is 0.5 (12 recordings per class)
    # with a real class signal the grouped estimate is high too
    x, y, g = recordings(signal=4.0, seed=1)
    head, rep = train_head(x, y, ["a", "b"], groups=g)
    assert rep.cv_accuracy > 0.9 and head.card.cv_grouping == "recording"


def test_one_recording_per_class_falls_back_to_time_blocks_and_says_so():
    x, y, g = recordings(n_rec=2, per_rec=20, signal=6.0)
    folds, single = grouped_folds(y, g, 5)
    assert single == [0, 1] and len(folds) == 5
    _, rep = train_head(x, y, ["a", "b"], groups=g)
    assert any("one recording only" in w for w in rep.warnings)


def test_sources_group_spans_with_their_file_and_legacy_mic_runs():
    assert recording_of("/a/b.wav 1.00-2.50 s") == "/a/b.wav"
    assert recording_of("live 12.00-15.00 s") == "live 12.00-15.00 s"
    src = ["/x.wav", "/x.wav", "/y.wav", "/x.wav 0.00-1.00 s", "mic", "mic", "mic", "", ""]
    lab = np.array([0, 0, 1, 1, 0, 0, 1, 0, 0])
    g = source_groups(src, lab)
    assert g[0] == g[1] == g[3] and g[2] != g[0]
    assert g[4] == g[5] and g[6] != g[5]  # a new run of "mic" when the label changes
    assert g[7] == g[8] and g[7] not in (g[4], g[6])


def test_thresholds_for_false_alarms_per_hour():
    x, y, g = recordings(n_rec=20, per_rec=30, signal=2.5, seed=4)
    cal = Calibration(per_hour=60.0, hop_s=1.0)  # 60 per hour at 1 s hop: 1/60 of background windows
    head, rep = train_head(x, y, ["dog", "background"], groups=g, calibration=cal)
    bg = x[y == 1]
    fired = head.detections(head.predict(bg))[:, 0]
    assert fired.mean() * 3600 / 1.0 <= 60.0 + 1e-6
    fig = rep.per_class[0]
    assert fig.false_alarms_per_hour is not None and fig.false_alarms_per_hour <= 60.0 + 1e-6
    assert 0.0 <= fig.recall <= 1.0 and fig.threshold >= 0.5
    assert Calibration.from_text(head.card.calibration) == cal
    # a stricter target gives a higher threshold and no more false alarms
    strict, rep2 = train_head(
        x, y, ["dog", "background"], groups=g, calibration=Calibration(per_hour=0.0, hop_s=1.0)
    )
    assert strict.thresholds[0] >= head.thresholds[0]
    assert rep2.per_class[0].false_alarms_per_hour == 0.0
    assert not strict.detections(strict.predict(bg))[:, 0].any()


def test_thresholds_for_a_target_precision():
    x, y, g = recordings(n_rec=30, per_rec=10, signal=2.0, seed=5)
    head, rep = train_head(x, y, ["a", "b"], groups=g, calibration=Calibration(precision=0.95))
    for j, fig in enumerate(rep.per_class):
        if fig.recall > 0:
            assert fig.precision >= 0.95
        assert fig.threshold == pytest.approx(float(head.thresholds[j]))
    assert head.card.class_precision == tuple(round(f.precision, 6) for f in rep.per_class)


def test_cards_written_before_the_new_fields_still_verify(tmp_path):
    from safetensors.numpy import save

    x, y, g = recordings(n_rec=6)
    head, _ = train_head(x, y, ["a", "b"], c_grid=(1.0,), n_folds=2)
    tensors, meta = head_payload(head)
    assert load_head_from(tmp_path / "new.safetensors", tensors, meta).card.cv_grouping == "window"
    # an older writer: no late fields in the card, checksum over the others only
    from dataclasses import replace

    old = replace(head, card=replace(head.card, cv_grouping="", calibration="", class_precision=(),
                                     class_recall=()))  # fmt: skip
    tensors, meta = head_payload(old)
    card = json.loads(meta["card"])
    for key in ("cv_grouping", "calibration", "class_precision", "class_recall"):
        del card[key]
    meta["card"] = json.dumps(card)
    path = tmp_path / "old.safetensors"
    path.write_bytes(save(tensors, metadata=meta))
    assert load_head(path).card.cv_grouping == ""


def load_head_from(path, tensors, meta):
    from safetensors.numpy import save

    path.write_bytes(save(tensors, metadata=meta))
    return load_head(path)
