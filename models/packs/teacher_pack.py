"""The teacher as a model pack: EfficientAT mn04_as (MIT) converted into an Encotag mel pack.

The teacher folder (``../shared/teachers/efficientat_mn04_as``) holds ``mn04_as_mAP_432.pt`` (a PyTorch
state dict: the only file Encotag reads with ``torch.load``, always ``weights_only=True``) and the AudioSet
label table ``class_labels_indices.csv``. :func:`build_teacher_pack` writes them as a strict mel pack
(safetensors + manifest), the form the engine, ``encotag eval`` and ``encotag bench`` use. The CLI verb is
``encotag pack teacher --out DIR``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from models.config import MelConfig, TaggerConfig, WindowConfig
from models.packs.pack import PackError, one_line, save_pack, sha256_file

TEACHER_FILE = "mn04_as_mAP_432.pt"
TEACHER_LABELS = "class_labels_indices.csv"
TEACHER_LICENCE = "MIT (EfficientAT, (c) 2022 Florian Schmid); AudioSet labels CC BY 4.0 (Google)"


def teacher_labels(path: Path) -> list[str]:
    """The display names of ``class_labels_indices.csv`` in index order; the indices must be 0..n-1."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: int(r["index"]))
    if [int(r["index"]) for r in rows] != list(range(len(rows))):
        raise PackError(f"{path}: indices are not 0..n-1")
    return [r["display_name"] for r in rows]


def build_teacher_pack(teacher_dir: Path | str, out_dir: Path | str) -> Path:
    """Write the teacher in ``teacher_dir`` as a mel pack at ``out_dir`` (atomically); return ``out_dir``.

    Raises :class:`PackError` "<path>: <reason>" when the weights or labels are missing or unreadable.
    """
    tdir = Path(teacher_dir)
    weights = tdir / TEACHER_FILE
    if not weights.is_file():
        raise PackError(f"{weights}: missing teacher weights")
    return build_mel_pack(weights, out_dir, labels=teacher_labels(tdir / TEACHER_LABELS))


def build_mel_pack(
    weights: Path | str,
    out_dir: Path | str,
    *,
    labels: list[str],
    name: str = "EfficientAT mn04_as (teacher, mel input)",
    description: str = "EfficientAT mn04_as AudioSet tagger (mAP .432) on the 32 kHz log-mel front end.",
    source: str = "https://github.com/fschmid56/EfficientAT (mn04_as)",
    evaluation: dict[str, float] | None = None,
) -> Path:
    """The teacher conversion: EfficientAT mn04_as weights (a state dict, read with
    ``weights_only=True``) and its labels as a mel pack at ``out_dir`` (atomically). ``evaluation``
    goes into the manifest's provenance (the figures ``encotag pack list`` shows)."""
    from models.nets.tagger import load_teacher_state

    weights = Path(weights)
    try:
        state = load_teacher_state(weights)
    except Exception as exc:  # noqa: BLE001 - torch raises several exception types on a damaged file
        raise PackError(f"{weights}: {one_line(exc)}") from None
    provenance: dict[str, object] = {
        "source": source,
        "file": weights.name,
        "sha256": sha256_file(weights),
        "converted_by": "models.packs.teacher_pack.build_mel_pack",
    }
    if evaluation:
        provenance["evaluation"] = dict(evaluation)
    return save_pack(
        out_dir,
        name=name,
        description=description,
        tagger_cfg=TaggerConfig(width=0.4, num_classes=len(labels), frontend="mel"),
        tagger_state=state,
        labels=labels,
        trusted=[True] * len(labels),
        window=WindowConfig(),
        licence=TEACHER_LICENCE,
        provenance=provenance,
        mel_cfg=MelConfig(),
    )
