"""Issue 25, items 5, 7 and 9: heads and their example sets.

A head and its examples are one file, written under the store's lock; ``head import`` does not
overwrite without ``--force``; a retrain without kept examples drops the old set; stale temp files go;
the card is covered by the checksum; a blank pack id, a wrong embedding size or NaN weights are refused
with one line; ``head list`` marks a damaged head; a FIFO or ``/dev/zero`` given as a head never hangs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.heads.head_file import load_head, save_head
from models.heads.head_store import ExampleSet, HeadStore, PackStamp
from models.heads.heads import Head, HeadError, layout_hash, train_head
from tests.hostile import GIB, REPO, Cap, one_line, run_child, run_cli, wav

LAYOUT = (("block5", 4), ("block11", 4))


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCOTAG_HOME", str(tmp_path_factory.mktemp("home")))


def small_head(name: str, classes: tuple[str, ...] = ("a", "b"), d: int = 8, pack_id: str = "",
               layout: tuple = ()) -> Head:  # fmt: skip
    rng = np.random.default_rng(len(classes) + d)
    x = np.concatenate([rng.normal(3 * i, 1, (12, d)) for i in range(len(classes))]).astype(np.float32)
    y = np.repeat(np.arange(len(classes)), 12)
    head, _ = train_head(x, y, classes, name=name, c_grid=(1.0,), n_folds=2, pack_id=pack_id, layout=layout)
    return head


def examples_for(head: Head, n: int = 3) -> ExampleSet:
    ex = ExampleSet.empty()
    stamp = PackStamp("p" * 64, layout_hash(LAYOUT))
    for c in head.classes:
        ex = ex.add(c, np.full((n, head.card.embedding_size), float(len(c))), f"{c}.wav", stamp)
    return ex


def _rewrite_card(path: Path, change) -> None:
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    card = json.loads(header["__metadata__"]["card"])
    change(card)
    header["__metadata__"]["card"] = json.dumps(card)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + blob[8 + n :])


# ------------------------------------------------------------------------------------------ item 5
def test_head_and_examples_are_one_file_and_retrain_drops_stale_examples(tmp_path: Path) -> None:
    store = HeadStore(tmp_path)
    v1 = small_head("dog")
    store.save_examples("dog", examples_for(v1))  # a draft: examples before any head
    assert store.examples_path("dog").is_file()
    store.save(v1)  # training: the draft's examples move into the head file
    assert not store.examples_path("dog").exists()
    assert store.load_examples("dog").classes == ("a", "b")
    # retrained elsewhere with other classes and no kept examples: the old set must not come back
    v2 = small_head("dog", ("x", "y", "z"))
    store.save(v2, examples=None)
    assert store.load("dog").classes == ("x", "y", "z")
    assert len(store.load_examples("dog").label) == 0 and not store.examples_path("dog").exists()
    # editing the examples of a trained head rewrites its one file
    store.save_examples("dog", examples_for(v2))
    assert store.load_examples("dog").classes == ("x", "y", "z") and not store.examples_path("dog").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "dog.safetensors"]


def test_stale_temp_files_are_cleaned_on_the_next_write(tmp_path: Path) -> None:
    store = HeadStore(tmp_path)
    (tmp_path / ".encotag-abc123.tmp").write_bytes(b"left by a killed writer")
    (tmp_path / ".dog.safetensors.xyz.tmp").write_bytes(b"older temp name")
    store.save(small_head("dog"), examples=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "dog.safetensors"]


_WRITER = """
import sys
import numpy as np
from models.heads.head_store import ExampleSet, HeadStore, PackStamp
from models.heads.heads import Head, HeadCard

store, k = HeadStore(sys.argv[1]), int(sys.argv[2])
for i in range(8):
    classes = tuple(f"c{k}{i}{j}" for j in range(2 + (i + k) % 3))
    n, d = len(classes), 8
    card = HeadCard(name="race", classes=classes, kind="logreg", example_counts=(3,) * n, cv_accuracy=0.5,
                    c=1.0, pack_id="p" * 64, layout_hash="", embedding_size=d, created="now")
    head = Head(card, np.zeros(d, np.float32), np.ones(d, np.float32),
                {"w": np.ones((n, d), np.float32), "b": np.zeros(n, np.float32)}, np.full(n, 0.5, np.float32))
    ex = ExampleSet.empty()
    for c in classes:
        ex = ex.add(c, np.ones((3, d)), "x.wav", PackStamp("p" * 64, "l"))
    store.save(head, examples=ex)
"""


def test_concurrent_writers_never_leave_a_mismatched_pair(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), str(k)], env=env) for k in range(3)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    store = HeadStore(tmp_path)
    head, ex = store.load("race"), store.load_examples("race")
    assert ex.classes == head.classes  # one unit: the examples are the head's own
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "race.safetensors"]


def test_import_refuses_to_overwrite_without_force(tmp_path: Path, capsys: Cap) -> None:
    from app.paths import heads_dir

    store = HeadStore(heads_dir())
    mine = small_head("mine", ("bell", "background"))
    store.save(mine, examples=examples_for(mine))
    other = save_head(small_head("other", ("x", "y", "z"), pack_id="f" * 64), tmp_path / "other.safetensors")
    code, _, err = run_cli(capsys, "head", "import", other, "--name", "mine")
    assert code == 1
    one_line(err, "a head named 'mine' already exists", "--force")
    assert store.load("mine").classes == ("bell", "background") and len(store.load_examples("mine").label)
    code, out, err = run_cli(capsys, "head", "import", other, "--name", "mine", "--force")
    assert code == 0, err
    assert store.load("mine").classes == ("x", "y", "z") and len(store.load_examples("mine").label) == 0


def test_delete_of_a_missing_head_is_an_error(capsys: Cap) -> None:
    code, out, err = run_cli(capsys, "head", "delete", "nosuchhead")
    assert code == 1 and out == ""
    one_line(err, "no head named 'nosuchhead'")


# ------------------------------------------------------------------------------------------ item 9
def test_card_is_covered_by_the_checksum(tmp_path: Path) -> None:
    path = save_head(small_head("h", pack_id="p" * 64, layout=LAYOUT), tmp_path / "h.safetensors")
    good = path.read_bytes()
    for change in (lambda c: c.update(classes=["cat", "dog"]), lambda c: c.update(pack_id=""),
                   lambda c: c.update(cv_accuracy=0.123)):  # fmt: skip
        path.write_bytes(good)
        _rewrite_card(path, change)
        with pytest.raises(HeadError, match="do not match their checksum") as err:
            load_head(path)
        assert "\n" not in str(err.value)


def test_blank_pack_id_wrong_size_and_nan_weights_are_refused(tmp_path: Path) -> None:
    blank = save_head(small_head("blank", d=8, layout=LAYOUT), tmp_path / "blank.safetensors")
    with pytest.raises(HeadError, match="made for no recorded model pack"):
        load_head(blank, pack_id="p" * 64, layout=LAYOUT)
    wrong = save_head(small_head("w", d=7, pack_id="p" * 64, layout=LAYOUT), tmp_path / "w.safetensors")
    with pytest.raises(HeadError, match="takes 7-dim embeddings; this pack makes 8-dim ones"):
        load_head(wrong, pack_id="p" * 64, layout=LAYOUT)
    head = small_head("nan", pack_id="p" * 64, layout=LAYOUT)
    head.params["w"][0, 0] = np.nan
    nan = save_head(head, tmp_path / "nan.safetensors")  # a valid checksum over NaN weights
    with pytest.raises(HeadError, match="NaN or infinity"):
        load_head(nan)


def test_tag_with_a_head_of_the_wrong_size_is_a_usage_error(
    tmp_path: Path, tiny_mel_pack: Path, capsys: Cap
) -> None:
    from models.packs.pack import load_pack

    info = load_pack(tiny_mel_pack).info
    wrong = small_head("w", d=7, pack_id=info.pack_id, layout=info.embedding_layout)
    path = save_head(wrong, tmp_path / "w.safetensors")
    code, out, err = run_cli(capsys, "tag", wav(tmp_path / "a.wav"), "--pack", tiny_mel_pack, "--head", path)
    assert code == 2 and out == ""  # was: every file failed with a matmul error blamed on the audio
    one_line(err, "w.safetensors", f"takes 7-dim embeddings; this pack makes {info.embedding_size}-dim")


def test_head_list_marks_a_damaged_head(capsys: Cap) -> None:
    from app.paths import heads_dir

    store = HeadStore(heads_dir())
    store.save(small_head("fine"), examples=None)
    path = store.save(small_head("bad"), examples=None)
    blob = bytearray(path.read_bytes())
    blob[-6] ^= 0x10  # one weight bit: the card alone still parses
    path.write_bytes(bytes(blob))
    code, out, _ = run_cli(capsys, "head", "list")
    assert code == 0
    lines = dict(line.split("\t", 1) for line in out.splitlines())
    assert lines["bad"].startswith("UNREADABLE:") and "checksum" in lines["bad"]
    assert "UNREADABLE" not in lines["fine"]


# ------------------------------------------------------------------------------------------ items 4, 7
def test_head_import_of_a_fifo_or_dev_zero_never_hangs(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.safetensors"
    zero.symlink_to("/dev/zero")
    home = tmp_path / "home"
    for src, kind in ((fifo, "FIFO (named pipe)"), (zero, "character device")):
        code, _, err, peak = run_child("head", "import", src, home=home)
        assert code == 1
        one_line(err, str(src), f"is a {kind}")
        assert peak < GIB  # was: read /dev/zero until MemoryError


def test_tag_head_fifo_is_refused_at_once(tmp_path: Path, tiny_mel_pack: Path) -> None:
    fifo = tmp_path / "h.safetensors"
    os.mkfifo(fifo)
    code, out, err, _ = run_child("tag", wav(tmp_path / "a.wav"), "--pack", tiny_mel_pack, "--head", fifo)
    assert code == 2 and out == ""
    one_line(err, "FIFO")
