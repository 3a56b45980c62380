#!/usr/bin/env python3
"""Smoke test of the PyInstaller bundle (standard library only; any Python 3.10+ runs it).

    python3 tools/bundle_smoke.py [dist/encotag]

Runs the frozen ``encotag`` binary with Qt offscreen and every user folder in a temporary ENCOTAG_HOME:

1. the folder holds no CUDA library and is at most ENCOTAG_MAX_BUNDLE_MB (default 600 MB, 10^6 bytes,
   summed file sizes; symbolic links not counted);
2. ``encotag --version`` prints the source tree's version;
3. every sub-command present in the source tree answers ``--help`` (the CLI imports sub-commands by name,
   so a module PyInstaller missed would otherwise just vanish);
4. a model pack: the bundled default pack, or else one built with ``encotag pack teacher`` from
   ../shared (skipped, with a notice, while neither exists);
5. ``encotag tag <bundled example> --format json`` exits 0 and prints JSON;
6. ``encotag gui --open <bundled example> --exit-after 5 --screenshot …`` exits 0 and writes the screenshot;
7. start time: with Xvfb and xwininfo present, the time from launch until the window is mapped on the
   X server; otherwise the wall time of ``gui --exit-after 1`` minus 1 s (an upper bound).

Any non-zero exit, time-out, or "Traceback"/"ImportError"/"ModuleNotFoundError" on stderr fails the test, and
so does torch's "Unable to retrieve source" warning (a module build.spec collected as byte code only although
torch reads its source).
Writes a summary to ``<dist>/../bundle_report.txt`` and exits non-zero on failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BAD_STDERR = re.compile(
    r"Traceback \(most recent call last\)|ModuleNotFoundError|ImportError|Segmentation fault"
    r"|Unable to retrieve source|could not get source code"
)
CUDA_FILE = re.compile(
    r"(cudart|cudnn|cublas|cufft|curand|cusolver|cusparse|nccl|nvrtc|libcuda|nvjitlink)", re.I
)


class SmokeError(Exception):
    """A check failed; the message says which and why."""


def source_version() -> str:
    text = (ROOT / "app" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'__version__\s*=\s*"([^"]+)"', text)
    if not match:
        raise SmokeError("app/__init__.py: no __version__")
    return match.group(1)


def source_commands() -> list[str]:
    text = (ROOT / "app" / "cli.py").read_text(encoding="utf-8")
    match = re.search(r"COMMANDS\s*=\s*\(([^)]*)\)", text)
    if not match:
        raise SmokeError("app/cli.py: no COMMANDS tuple")
    names = re.findall(r'"([a-z_]+)"', match.group(1))
    return [n for n in names if (ROOT / "app" / "commands" / f"{n}.py").is_file()]


class Bundle:
    def __init__(self, dist: Path, home: Path) -> None:
        self.dist = dist
        self.binary = dist / "encotag"
        internal = dist / "_internal"
        self.resources = (internal if internal.is_dir() else dist) / "resources"
        self.env = dict(os.environ)
        self.env.update({"ENCOTAG_HOME": str(home), "QT_QPA_PLATFORM": "offscreen", "PYTHONUNBUFFERED": "1"})
        self.env.pop("DISPLAY", None)
        self.env.pop("WAYLAND_DISPLAY", None)
        self.env.pop("PYTHONPATH", None)
        self.env.pop("PYTHONHOME", None)

    def run(
        self, *args: str, timeout: float = 180, env: dict[str, str] | None = None
    ) -> tuple[str, str, float]:
        """Run the binary; return (stdout, stderr, seconds); raise SmokeError on failure."""
        cmd = [str(self.binary), *args]
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env or self.env,
                cwd=tempfile.gettempdir(),
            )
        except subprocess.TimeoutExpired as exc:
            raise SmokeError(f"{' '.join(args)}: timed out after {timeout:.0f} s") from exc
        seconds = time.perf_counter() - start
        if proc.returncode != 0 or BAD_STDERR.search(proc.stderr):
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
            raise SmokeError(f"encotag {' '.join(args)}: exit {proc.returncode}\n{tail}")
        return proc.stdout, proc.stderr, seconds


def check_files(dist: Path, limit_mb: float | None = None) -> tuple[float, int]:
    """(MB, file count) of ``dist``; raise SmokeError on a CUDA library or a size over ``limit_mb``."""
    total, count = 0, 0
    for path in dist.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        if ".so" in path.name and CUDA_FILE.search(path.name):
            raise SmokeError(f"{path}: CUDA library in a CPU-only bundle")
        total += path.stat().st_size
        count += 1
    if limit_mb is not None and total / 1e6 > limit_mb:
        raise SmokeError(f"{dist}: {total / 1e6:.0f} MB on disk ({count} files) exceeds {limit_mb:.0f} MB")
    return total / 1e6, count


def find_pack(bundle: Bundle, commands: list[str], work: Path, notes: list[str]) -> list[str]:
    """Arguments selecting a model pack (``[]`` for the bundled default), or raise if none can be had."""
    if (bundle.resources / "packs" / "default" / "manifest.json").is_file():
        notes.append("pack: bundled default pack")
        return []
    teacher = ROOT.parent / "shared" / "teachers" / "efficientat_mn04_as"
    if "pack" in commands and teacher.is_dir():
        out = work / "teacher-pack"
        usage, _, _ = bundle.run("pack", "teacher", "--help", timeout=120)
        teacher_args = ["--teacher", str(teacher)] if "--teacher" in usage else []
        bundle.run("pack", "teacher", *teacher_args, "--out", str(out), timeout=600)
        if not (out / "manifest.json").is_file():
            raise SmokeError(f"encotag pack teacher: no manifest.json in {out}")
        notes.append(
            "pack: no default pack in the bundle; used one built by the frozen `encotag pack teacher`"
        )
        return ["--pack", str(out)]
    raise SmokeError(
        "no model pack: resources/packs/default is empty and `encotag pack teacher` is unavailable"
    )


def window_visible_seconds(bundle: Bundle, pack_args: list[str], notes: list[str]) -> float:
    """Seconds from launch until the main window is mapped (Xvfb), or an upper bound (offscreen)."""
    xvfb, xwininfo = shutil.which("Xvfb"), shutil.which("xwininfo")
    if xvfb and xwininfo:
        display = f":{90 + os.getpid() % 100}"
        server = subprocess.Popen(
            [xvfb, display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)
            env = dict(bundle.env, DISPLAY=display, QT_QPA_PLATFORM="xcb")
            start = time.perf_counter()
            app = subprocess.Popen(
                [str(bundle.binary), "gui", *pack_args, "--exit-after", "3"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            seen = None
            while app.poll() is None and time.perf_counter() - start < 120:
                tree = subprocess.run(
                    [xwininfo, "-root", "-tree"], capture_output=True, text=True, env=env, timeout=10
                ).stdout
                if re.search(r'"[^"]*Encotag[^"]*"', tree) and re.search(r"\d+x\d+\+", tree):
                    seen = time.perf_counter() - start
                    break
                time.sleep(0.05)
            _, err = app.communicate(timeout=120)
            if app.returncode != 0 or BAD_STDERR.search(err or ""):
                raise SmokeError(f"gui under Xvfb (xcb): exit {app.returncode}\n{(err or '')[-2000:]}")
            if seen is None:
                raise SmokeError("gui under Xvfb (xcb): no window titled 'Encotag' appeared")
            notes.append("start time: launch → window mapped on Xvfb (xcb platform plugin)")
            return seen
        finally:
            server.terminate()
            server.wait(timeout=10)
    _, _, seconds = bundle.run("gui", *pack_args, "--exit-after", "1")
    notes.append(
        "start time: offscreen `gui --exit-after 1` wall time minus 1 s (upper bound; no Xvfb/xwininfo)"
    )
    return max(seconds - 1.0, 0.0)


def main(argv: list[str]) -> int:
    dist = Path(argv[1] if len(argv) > 1 else ROOT / "dist" / "encotag").resolve()
    limit_mb = float(os.environ.get("ENCOTAG_MAX_BUNDLE_MB", "600"))
    report: dict[str, str] = {}
    notes: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="encotag-smoke-"))
    bundle = Bundle(dist, work / "home")
    ok = True
    try:
        if not os.access(bundle.binary, os.X_OK):
            raise SmokeError(f"{bundle.binary}: missing or not executable")
        size_mb, count = check_files(dist, limit_mb)
        report["size"] = f"{size_mb:.0f} MB on disk ({count} files; limit {limit_mb:.0f} MB)"

        version = source_version()
        out, _, seconds = bundle.run("--version", timeout=120)
        if out.strip() != f"encotag {version}":
            raise SmokeError(f"--version printed {out.strip()!r}, expected 'encotag {version}'")
        report["version"] = f"{out.strip()} (`--version` took {seconds:.2f} s)"

        commands = source_commands()
        top_help, _, _ = bundle.run("--help", timeout=120)
        for name in commands:
            text, _, _ = bundle.run(name, "--help", timeout=120)
            if not text.startswith(f"usage: encotag {name}") or name not in top_help:
                raise SmokeError(f"sub-command {name!r} missing from the bundle")
        report["commands"] = ", ".join(commands)

        example = bundle.resources / "examples" / "example.flac"
        if not example.is_file():
            raise SmokeError(f"{example}: bundled example missing")
        pack_args = find_pack(bundle, commands, work, notes)

        if "tag" in commands:
            out, _, seconds = bundle.run("tag", str(example), "--format", "json", *pack_args, timeout=300)
            try:
                parsed = json.loads(out)
            except json.JSONDecodeError as exc:
                raise SmokeError(f"tag --format json: not JSON ({exc}): {out[:200]!r}") from exc
            report["tag"] = f"tagged the bundled example in {seconds:.1f} s ({len(parsed)} top-level entries)"
        else:
            notes.append("tag: command not in this source tree yet; skipped")

        if "gui" in commands:
            shot = work / "gui.png"
            _, _, seconds = bundle.run(
                "gui",
                "--open",
                str(example),
                *pack_args,
                "--exit-after",
                "5",
                "--screenshot",
                str(shot),
                timeout=300,
            )
            if not shot.is_file() or shot.stat().st_size == 0:
                raise SmokeError(f"gui --screenshot: {shot} not written")
            report["gui"] = (
                f"opened and tagged the bundled example offscreen, exit 0 ({seconds:.1f} s incl. 5 s wait)"
            )
            visible = window_visible_seconds(bundle, pack_args, notes)
            report["start"] = f"window visible {visible:.2f} s after launch (target ≤ 3 s)"
    except SmokeError as exc:
        ok = False
        report["FAILED"] = str(exc)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [f"{key}: {value}" for key, value in report.items()] + [f"note: {n}" for n in notes]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    try:
        (dist.parent / "bundle_report.txt").write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"bundle_smoke: cannot write the report: {exc}", file=sys.stderr)
    print("bundle smoke test:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
