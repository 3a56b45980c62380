"""Packaging: pyproject metadata, wheel contents, resources, desktop entry, scripts and the bundle spec."""

from __future__ import annotations

import ast
import configparser
import os
import shutil
import struct
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import app
from app import cli
from models import resources

REPO = Path(__file__).resolve().parent.parent
RUNTIME = {
    "torch",
    "transformers",
    "safetensors",
    "numpy",
    "soundfile",
    "soxr",
    "platformdirs",
    "sounddevice",
    "pyside6-essentials",
    "pyqtgraph",
}


def _name(requirement: str) -> str:
    for sep in ("<", ">", "=", "!", "~", "[", ";", " "):
        requirement = requirement.split(sep)[0]
    return requirement.strip().lower()


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_pyproject_metadata(pyproject: dict) -> None:
    project = pyproject["project"]
    assert project["name"] == "encotag"
    assert project["scripts"]["encotag"] == "app.cli:main"
    deps = project["dependencies"]
    assert {_name(d) for d in deps} == RUNTIME
    assert all(">=" in d for d in deps), "every runtime dependency needs a lower bound"
    assert {"test", "train"} <= set(project["optional-dependencies"])
    assert "pytest" in {_name(d) for d in project["optional-dependencies"]["test"]}
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "app.__version__"


def test_version_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "app", "--version"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"encotag {app.__version__}"
    assert cli.main(["--version"]) == 0


def test_resource_resolver_source_and_frozen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert resources.resources_root() == REPO / "resources"
    assert len(resources.audioset_labels()) == 527
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.resource_path("icons", "encotag.png") == tmp_path / "resources" / "icons" / "encotag.png"
    assert resources.default_pack_dir() == tmp_path / "resources" / "packs" / "default"


def test_icons_and_desktop_entry() -> None:
    svg = ET.parse(REPO / "resources" / "icons" / "encotag.svg").getroot()
    assert svg.tag.endswith("svg") and svg.get("viewBox") == "0 0 256 256"
    for name, size in (("encotag.png", 256), ("encotag-48.png", 48)):
        head = (REPO / "resources" / "icons" / name).read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", head[16:24]) == (size, size)
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(REPO / "resources" / "encotag.desktop", encoding="utf-8")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application" and desktop["Name"] == "Encotag"
    assert desktop["Exec"].split()[0] == "encotag" and desktop["Icon"] == "encotag"
    assert desktop["Categories"].endswith(";")


def test_example_audio() -> None:
    path = REPO / "resources" / "examples" / "example.flac"
    assert path.stat().st_size < 300_000
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    assert sr == 22050 and audio.shape[1] == 1
    assert 7.5 <= len(audio) / sr <= 8.5
    assert np.isfinite(audio).all() and 0.05 < float(np.abs(audio).max()) <= 1.0
    per_second = np.sqrt((audio[: 8 * sr, 0].reshape(8, sr) ** 2).mean(axis=1))
    assert (per_second > 0.01).all(), "no silent second"
    assert (REPO / "resources" / "examples" / "README.md").is_file()


def test_scripts_parse_and_are_executable() -> None:
    bash = shutil.which("bash")
    assert bash is not None
    for script in ("tools/setup.sh", "tools/test.sh", ".ci/run"):
        path = REPO / script
        assert os.access(path, os.X_OK), f"{script} is not executable"
        proc = subprocess.run([bash, "-n", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{script}: {proc.stderr}"
        assert "set -euo pipefail" in path.read_text(encoding="utf-8")
    setup = (REPO / "tools" / "setup.sh").read_text(encoding="utf-8")
    assert "torch==2.13.0+cpu" in setup and "libportaudio2" in setup and "libxcb-cursor0" in setup
    assert "./tools/test.sh" in (REPO / ".ci" / "run").read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "./tools/setup.sh" in readme and "./tools/test.sh" in readme


def test_build_spec_is_valid_python_with_required_parts() -> None:
    text = (REPO / "build.spec").read_text(encoding="utf-8")
    ast.parse(text)
    needles = (
        '"transformers.models.encodec"',
        'modules_under(ROOT / "app", "app")',
        "resources",
        "COLLECT(",
        "module_collection_mode=module_collection_mode",  # byte code only for torch/transformers
        "pyi_shrink.shrink_icu_data",
        "pyi_shrink.strip_copy",
    )
    for needle in needles:
        assert needle in text


def test_bundle_smoke_reads_the_source_tree(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import bundle_smoke
    finally:
        sys.path.remove(str(REPO / "tools"))
    assert bundle_smoke.source_version() == app.__version__
    commands = bundle_smoke.source_commands()
    assert set(commands) <= set(cli.COMMANDS)
    assert all((REPO / "app" / "commands" / f"{name}.py").is_file() for name in commands)
    (tmp_path / "libcudart.so.12").write_bytes(b"\0" * 16)
    with pytest.raises(bundle_smoke.SmokeError, match="CUDA library"):
        bundle_smoke.check_files(tmp_path)
    size_mb, count = bundle_smoke.check_files(REPO / "resources" / "icons")
    assert count == 3 and 0 < size_mb < 1
    assert bundle_smoke.check_files(REPO / "resources" / "icons", limit_mb=600) == (size_mb, count)
    with pytest.raises(bundle_smoke.SmokeError, match="exceeds"):
        bundle_smoke.check_files(REPO / "resources" / "icons", limit_mb=size_mb / 2)


def _copy_source(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("app", "models", "resources"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    return dest


def test_wheel_contains_code_and_resources(tmp_path: Path) -> None:
    setuptools = pytest.importorskip("setuptools")
    major = int(setuptools.__version__.split(".")[0])
    if major < 77:
        pytest.skip(
            f"setuptools {setuptools.__version__} < 77 cannot build offline (pip install -e '.[test]')"
        )
    src = _copy_source(tmp_path / "src")
    out = tmp_path / "wheel"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = out.glob("encotag-*.whl")
    assert wheel.name.startswith(f"encotag-{app.__version__}-")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for required in (
            "app/cli.py",
            "app/settings.py",
            "models/resources.py",
            "resources/labels/audioset_labels.json",
            "resources/icons/encotag.svg",
            "resources/icons/encotag.png",
            "resources/encotag.desktop",
            "resources/examples/example.flac",
        ):
            assert required in names, required
        if (REPO / "resources" / "packs" / "default" / "manifest.json").is_file():
            assert "resources/packs/default/manifest.json" in names
        assert not any(n.startswith("tests/") or "__pycache__" in n for n in names)
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "encotag = app.cli:main" in zf.read(entry_points).decode()
        site = tmp_path / "site"
        zf.extractall(site)
    # A plain (non-editable) install: the resolver finds resources/ beside the packages.
    code = (
        "import models.resources as r; p = r.resource_path('labels', 'audioset_labels.json');"
        "print(p); assert p.is_file(); assert len(r.audioset_labels()) == 527"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).is_relative_to(site)
