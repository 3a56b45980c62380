"""tools/rebuild-corpus.sh: a round that ends short of its hours does not stop the rebuild; errors do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "rebuild-corpus.sh"

# A stand-in for `encotag` that logs each build call and exits with the status $FAKE_RC_<n> of its n-th
# build (0 when unset); `--list-sources` prints two runnable sources the way the real command does.
FAKE = """#!{python}
import os, sys
log = os.environ["FAKE_LOG"]
if "--list-sources" in sys.argv:
    print("fsdd                     speech       shared                           ok")
    print("maad-soundscape          environment  repo                             ok")
    sys.exit(0)
with open(log, "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
n = sum(1 for _ in open(log))
sys.exit(int(os.environ.get(f"FAKE_RC_{{n}}", "0")))
"""


def _fake_encotag(folder: Path) -> Path:
    fake = folder / "encotag"
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(0o755)
    return fake


def _run(tmp_path: Path, **rcs: int) -> tuple[int, list[str], str]:
    fake = _fake_encotag(tmp_path)
    log = tmp_path / "calls.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "ENCOTAG": str(fake), "FAKE_LOG": str(log)}
    env.update({f"FAKE_RC_{k[1:]}": str(v) for k, v in rcs.items()})
    proc = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "corpus"), str(tmp_path / "snap")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return proc.returncode, calls, proc.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_short_round_goes_on_and_errors_stop(tmp_path: Path) -> None:
    rc, calls, _ = _run(tmp_path)
    assert rc == 0 and len(calls) >= 9  # every documented round ran
    everything = len(calls)
    # the first round builds only the sources known then: the later repositories are left out
    assert "--sources fsdd " in calls[0] and "maad-soundscape" not in calls[0].split("--sources")[1]
    rc, calls, err = _run(tmp_path, n1=1)
    assert rc == 0 and len(calls) == everything and "short of its target" in err
    rc, calls, _ = _run(tmp_path, n2=2)
    assert rc == 2 and len(calls) == 2


ALL = Path(__file__).resolve().parents[1] / "tools" / "rebuild-training-data.sh"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_training_data_rebuild_runs_every_step(tmp_path: Path) -> None:
    """Snapshots of bare mirrors (also those fetched as repo/.git), the corpus rounds, then two feature
    workers from both ends and a final pass; a failing step stops the script."""
    fake = _fake_encotag(tmp_path)
    mirrors = tmp_path / "mirrors"
    (mirrors / "a+b" / "repo").mkdir(parents=True)
    (mirrors / "a+b" / "repo" / "HEAD").write_text("ref: refs/heads/main\n")
    (mirrors / "c+d" / "repo" / ".git").mkdir(parents=True)
    (mirrors / "c+d" / "repo" / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    log = tmp_path / "calls.log"
    corpus = tmp_path / "corpus"
    env = {**os.environ, "ENCOTAG": str(fake), "FAKE_LOG": str(log), "TEACHER": str(tmp_path / "t")}
    args = ["bash", str(ALL), str(mirrors), str(tmp_path / "snap"), str(corpus)]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith("corpus snapshot ")
    assert f"{mirrors}/a+b/repo " in calls[0] + " " and f"{mirrors}/c+d/repo/.git" in calls[0]
    builds = [c for c in calls if c.startswith("corpus build")]
    assert len(builds) >= 9
    features = [c for c in calls if "train features" in c]
    assert len(features) == 3 and sum("--reverse" in c for c in features) == 1
    assert all(f"--corpus {corpus} " in c and "--per-clip" in c for c in features)
    assert calls.index(features[0]) > calls.index(builds[-1])  # caches only after the whole corpus
    assert (tmp_path / "corpus.logs" / "features.log").exists()
    # the snapshot step fails: nothing after it runs, and the status is passed on
    log.unlink()
    proc = subprocess.run(args, env={**env, "FAKE_RC_1": "3"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3 and len(log.read_text().splitlines()) == 1
    assert "a step failed (exit status 3)" in proc.stderr and "corpus.logs" in proc.stderr
