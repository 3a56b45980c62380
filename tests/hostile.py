"""Helpers shared by the hostile-input tests (``tests/test_hostile_*.py``): crafted files and CLI runs."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.cli import main

REPO = Path(__file__).resolve().parent.parent
Cap = pytest.CaptureFixture[str]
GIB = 1 << 30


def run_cli(capsys: Cap, *argv: object) -> tuple[int, str, str]:
    """The real CLI in this process: exit code, stdout, stderr."""
    code = main([os.fspath(a) if isinstance(a, Path) else str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_child(*argv: object, timeout: float = 60.0, home: Path | None = None) -> tuple[int, str, str, int]:
    """``python -m app ARGS`` in a child process (``timeout`` only guards against hangs): exit code,
    stdout, stderr and the child's peak RSS in bytes (``VmHWM`` of its own image)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    if home is not None:
        env["ENCOTAG_HOME"] = str(home)
    code = (
        "import resource, sys, runpy\n"
        "sys.argv = ['encotag', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('app', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    rc = e.code if isinstance(e.code, int) else 1\n"
        "    sys.stdout.flush()\n"
        "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    try:  # VmHWM: this process image only (ru_maxrss keeps the forked parent's peak across exec)\n"
        "        with open('/proc/self/status') as fh:\n"
        "            peak = next(int(l.split()[1]) for l in fh if l.startswith('VmHWM:'))\n"
        "    except (OSError, StopIteration, ValueError):\n"
        "        pass\n"
        "    print(f'@@PEAK_KB {peak}', file=sys.stderr)\n"
        "    sys.exit(rc)\n"
    )
    argv_s = [os.fsdecode(a) if isinstance(a, bytes) else os.fspath(a) if isinstance(a, Path) else str(a)
              for a in argv]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv_s],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=timeout,
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )
    peak = 0
    err_lines = []
    for line in proc.stderr.splitlines():
        if line.startswith("@@PEAK_KB "):
            peak = int(line.split()[1]) * 1024
        else:
            err_lines.append(line)
    err = "\n".join(err_lines) + ("\n" if err_lines else "")
    return proc.returncode, proc.stdout, err, peak


def one_line(err: str, *needles: str) -> str:
    """Assert ``err`` is exactly one line, no traceback, containing every needle; returns it."""
    lines = [line for line in err.splitlines() if line.strip() and "starting (command=" not in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "\x1b" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def noise(sr: int, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(sr)
    return (0.2 * rng.standard_normal(int(sr * seconds))).astype(np.float32)


def wav(path: Path, seconds: float = 1.5, sr: int = 16000) -> Path:
    sf.write(path, noise(sr, seconds), sr, subtype="PCM_16")
    return path


def wav_with_rate(path: Path, rate: int, n_bytes: int = 1 << 20) -> Path:
    """A 16-bit mono PCM WAV whose header claims ``rate`` Hz, with ``n_bytes`` of (silent) data."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, (rate * 2) & 0xFFFFFFFF, 2, 16)
    data = bytes(n_bytes)
    body = (
        b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    )
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path
