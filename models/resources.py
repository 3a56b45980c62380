"""One resolver for bundled resources, from a source checkout and inside the PyInstaller bundle."""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path


def resources_root() -> Path:
    """The ``resources/`` folder: ``sys._MEIPASS/resources`` when frozen, else beside the packages."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root is not None:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """Path of ``resources/<parts…>`` (not checked for existence)."""
    return resources_root().joinpath(*parts)


def default_pack_dir() -> Path:
    """The model pack shipped with Encotag."""
    return resource_path("packs", "default")


@lru_cache(maxsize=1)
def audioset_labels() -> tuple[str, ...]:
    """The 527 AudioSet display names, in model output order."""
    data = json.loads(resource_path("labels", "audioset_labels.json").read_text(encoding="utf-8"))
    return tuple(entry["name"] for entry in data["labels"])
