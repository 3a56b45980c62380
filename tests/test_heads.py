"""Personal heads: training quality against the reference probe, files, store, refusal of bad files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from models.heads.head_file import load_head, read_card, save_head
from models.heads.head_store import ExamplePackError, ExampleSet, HeadStore, PackStamp, check_name
from models.heads.heads import HeadError, TrainingCancelledError, layout_hash, train_head

LAYOUT = (("block5", 8), ("lowlevel", 8))


def blobs(n_per=30, k=3, d=16, spread=1.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(k, d))
    x = np.concatenate([centres[i] + spread * rng.normal(size=(n_per, d)) for i in range(k)])
    y = np.repeat(np.arange(k), n_per)
    return x.astype(np.float32), y


def test_separable_toy_set_is_learned():
    x, y = blobs(spread=0.5)
    head, report = train_head(x, y, ["a", "b", "c"], layout=LAYOUT, pack_id="p1")
    assert report.cv_accuracy >= 0.95
    assert report.confusion.sum() == len(y)
    assert np.trace(report.confusion) / len(y) == pytest.approx(report.cv_accuracy)
    probs = head.predict(x)
    assert probs.shape == (len(y), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.argmax(axis=1) == y).mean() >= 0.95


def test_matches_reference_sklearn_probe():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    assert sklearn
    x, y = blobs(n_per=40, k=4, d=24, spread=2.5, seed=3)
    xt, yt = blobs(n_per=40, k=4, d=24, spread=2.5, seed=3)  # same centres …
    rng = np.random.default_rng(9)
    xt = xt + rng.normal(0, 2.5, size=xt.shape).astype(np.float32)  # … fresh noise as a test split
    ref = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        {"logisticregression__C": [0.01, 0.1, 1, 10]},
        cv=5,
    ).fit(x, y)
    ref_acc = float((ref.predict(xt) == yt).mean())
    head, _ = train_head(x, y, ["a", "b", "c", "d"])
    acc = float((head.predict(xt).argmax(1) == yt).mean())
    assert acc >= ref_acc - 0.01


def test_mlp_kind_trains():
    x, y = blobs(spread=0.5)
    head, report = train_head(x, y, ["a", "b", "c"], kind="mlp", c_grid=(1.0,), n_folds=3)
    assert report.cv_accuracy >= 0.9
    assert set(head.params) == {"w1", "b1", "w2", "b2"}


def test_background_calibration_limits_false_alarms():
    x, y = blobs(n_per=60, k=2, spread=2.0, seed=1)
    head, _ = train_head(x, y, ["doorbell", "background"], false_alarm_rate=0.05)
    bg = head.predict(x[y == 1])
    fired = head.detections(bg)[:, 0].mean()
    assert fired <= 0.05 + 1e-9
    assert head.thresholds[0] >= 0.5
    assert head.card.false_alarm_rate == 0.05


def test_warnings_and_errors():
    x, y = blobs(n_per=3, k=2)
    _, report = train_head(x, y, ["a", "b"], n_folds=5)
    assert any("only 3" in w for w in report.warnings)
    with pytest.raises(ValueError, match="no examples"):
        train_head(x, y, ["a", "b", "c"])
    with pytest.raises(ValueError, match="two classes"):
        train_head(x, np.zeros(len(x), int), ["a"])
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_head(bad, y, ["a", "b"])


def test_cancel():
    x, y = blobs()
    with pytest.raises(TrainingCancelledError):
        train_head(x, y, ["a", "b", "c"], cancel=lambda: True)


def test_progress_reaches_total():
    x, y = blobs()
    seen = []
    train_head(x, y, ["a", "b", "c"], progress=seen.append)
    assert seen[-1].done == seen[-1].total
    assert [p.done for p in seen] == sorted(p.done for p in seen)


def test_save_load_round_trip(tmp_path):
    x, y = blobs()
    head, _ = train_head(x, y, ["a", "b", "c"], name="toy", pack_id="pack1", layout=LAYOUT)
    path = save_head(head, tmp_path / "toy.safetensors")
    again = load_head(path, pack_id="pack1", layout=LAYOUT)
    np.testing.assert_allclose(again.predict(x), head.predict(x), atol=1e-6)
    assert read_card(path).classes == ("a", "b", "c")
    assert again.card.layout_hash == layout_hash(LAYOUT)


def test_other_pack_and_layout_refused(tmp_path):
    x, y = blobs()
    head, _ = train_head(x, y, ["a", "b", "c"], pack_id="pack1", layout=LAYOUT)
    path = save_head(head, tmp_path / "h.safetensors")
    with pytest.raises(HeadError, match="another model pack"):
        load_head(path, pack_id="pack2")
    with pytest.raises(HeadError, match="layout"):
        load_head(path, layout=(("other", 16),))


def test_tampered_and_corrupt_files_refused(tmp_path):
    x, y = blobs()
    head, _ = train_head(x, y, ["a", "b", "c"])
    path = save_head(head, tmp_path / "h.safetensors")
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0xFF  # flip bits inside the last tensor
    tampered = tmp_path / "t.safetensors"
    tampered.write_bytes(bytes(blob))
    with pytest.raises(HeadError, match="checksum"):
        load_head(tampered)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(path.read_bytes()[:50])
    with pytest.raises(HeadError, match="not a valid head file"):
        load_head(truncated)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(os.urandom(300))
    with pytest.raises(HeadError):
        load_head(junk)
    with pytest.raises(HeadError, match="cannot read"):
        load_head(tmp_path / "missing.safetensors")


def test_interrupted_save_keeps_old_head(tmp_path, monkeypatch):
    x, y = blobs()
    head, _ = train_head(x, y, ["a", "b", "c"], name="v1")
    path = save_head(head, tmp_path / "h.safetensors")
    before = path.read_bytes()

    def boom(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    head2, _ = train_head(x, y, ["a", "b", "c"], name="v2")
    with pytest.raises(OSError):
        save_head(head2, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_head(path).card.name == "v1"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_store_list_rename_delete_import_export(tmp_path):
    store = HeadStore(tmp_path / "heads")
    x, y = blobs()
    head, _ = train_head(x, y, ["a", "b", "c"], name="cat")
    store.save(head)
    (store.root / "broken.safetensors").write_bytes(b"garbage")
    listed = {h.name: h for h in store.list()}
    assert listed["cat"].card is not None and listed["broken"].card is None
    assert "not a valid head file" in listed["broken"].error
    store.rename("cat", "my cat")
    assert store.load("my cat").classes == ("a", "b", "c")
    out = store.export("my cat", tmp_path / "shared_head")
    assert out.suffix == ".safetensors"
    store.import_file(out, "copy")
    assert {h.name for h in store.list()} == {"my cat", "copy", "broken"}
    store.delete("copy")
    with pytest.raises(HeadError, match="no head named"):
        store.load("copy")
    with pytest.raises(HeadError):
        store.import_file(store.root / "broken.safetensors")
    with pytest.raises(ValueError):
        check_name("../evil")


def test_example_sets_round_trip(tmp_path):
    store = HeadStore(tmp_path)
    pack = PackStamp("a" * 64, layout_hash(LAYOUT))
    ex = ExampleSet.empty()
    ex = ex.add("doorbell", np.ones((3, 4)), "a.wav", pack).add("background", np.zeros((2, 4)), "mic", pack)
    path = store.save_examples("bell", ex)
    back = store.load_examples("bell")
    assert back.classes == ("doorbell", "background")
    assert back.counts() == {"doorbell": 3, "background": 2}
    assert back.sources[-1] == "mic"
    assert back.pack == pack  # the pack that made the embeddings survives the round trip
    np.testing.assert_array_equal(back.emb, ex.emb)
    with pytest.raises(ValueError, match="embedding size"):
        back.add("doorbell", np.ones((1, 4 + 1)), "", pack)
    assert not list(tmp_path.glob("*.tmp*")) and path.name == "bell.examples.safetensors"


def test_example_sets_of_another_pack_are_refused(tmp_path):
    pack = PackStamp("a" * 64, layout_hash(LAYOUT))
    other = PackStamp("b" * 64, layout_hash(LAYOUT))
    relaid = PackStamp("a" * 64, layout_hash((("block5", 16),)))
    ex = ExampleSet.empty().add("dog", np.ones((3, 16)), "a.wav", pack)
    for bad in (other, relaid, None):
        with pytest.raises(ExamplePackError, match="pack") as err:
            ex.add("dog", np.ones((2, 16)), "b.wav", bad)
        assert "\n" not in str(err.value)
    with pytest.raises(ExamplePackError, match="another model pack.*add the examples again"):
        ex.check_pack(other)
    ex.check_pack(pack)
    ExampleSet.empty(("dog",)).check_pack(other)  # nothing to mix yet: any pack may start a set
    # an emptied set takes the pack of the next examples
    emptied = ExampleSet(ex.classes, ex.emb[:0], ex.label[:0], (), pack)
    assert emptied.add("dog", np.ones((1, 16)), "c.wav", other).pack == other


def _rewrite_metadata(path, change):
    """Rewrite a safetensors file's header metadata with ``change(meta)`` (tensors kept as they are)."""
    import json

    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    change(header["__metadata__"])
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + blob[8 + n :])


def test_example_sets_tampered_or_legacy(tmp_path):
    store = HeadStore(tmp_path)
    pack = PackStamp("a" * 64, layout_hash(LAYOUT))
    ex = ExampleSet.empty().add("dog", np.arange(12, dtype=np.float32).reshape(3, 4), "a.wav", pack)
    path = store.save_examples("dog", ex)
    good = path.read_bytes()
    # an embedding byte flipped, the pack id swapped, or the checksum removed: refused, one line
    blob = bytearray(good)
    blob[-5] ^= 0x40
    path.write_bytes(bytes(blob))
    with pytest.raises(HeadError, match="dog.examples.safetensors: example set does not match its checksum"):
        store.load_examples("dog")
    for change in (lambda m: m.update(pack_id="b" * 64), lambda m: m.pop("checksum")):
        path.write_bytes(good)
        _rewrite_metadata(path, change)
        with pytest.raises(HeadError, match="checksum"):
            store.load_examples("dog")
    path.write_bytes(good[:40])
    with pytest.raises(HeadError, match="not a valid example set"):
        store.load_examples("dog")
    # a set saved before packs were recorded (version 1) still loads, but is refused for mixing and training
    path.write_bytes(good)
    keep = ("classes", "sources")
    _rewrite_metadata(path, lambda m: [m.pop(k) for k in list(m) if k not in keep])
    legacy = store.load_examples("dog")
    assert legacy.pack is None and legacy.counts() == {"dog": 3}
    with pytest.raises(ExamplePackError, match="without a record of the model pack.*add the examples again"):
        legacy.check_pack(pack)
    with pytest.raises(ExamplePackError, match="without a record"):
        legacy.add("cat", np.ones((1, 4)), "b.wav", pack)
