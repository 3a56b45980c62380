"""What training writes and reads back: codec and tagger folders, and the model pack assembled from them.

A codec folder holds ``codec.safetensors`` + ``codec.json`` (configuration, training record); a tagger
folder ``tagger.safetensors`` + ``tagger.json``. :func:`assemble_pack` turns one of each into a model pack
(``docs/TRAINING.md``) with its provenance and README.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from torch import Tensor

from models.config import CodecConfig, TaggerConfig, WindowConfig, from_dict, to_dict
from models.training.distill import DistillConfig

LICENCE = "CC-BY-SA-4.0"  # of the weights Encotag trains (docs/TRAINING.md)


def git_commit(repo: Path) -> str:
    """The checkout's HEAD commit, or ``"unknown"``."""
    try:
        return subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def codec_dir_config(path: Path) -> tuple[CodecConfig, dict[str, Any]] | None:
    """(config, info) of a codec training folder (``codec.json``) or a pack (``manifest.json``), without
    reading the weights; None when the folder has neither."""
    path = Path(path)
    if (path / "codec.json").is_file():
        info = json.loads((path / "codec.json").read_text(encoding="utf-8"))
        return from_dict(CodecConfig, info["codec_cfg"]), info
    if (path / "manifest.json").is_file():
        info = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        return from_dict(CodecConfig, info["codec"]["config"]), info
    return None


def load_codec_dir(path: Path) -> tuple[CodecConfig, dict[str, Tensor], dict[str, Any]]:
    """(config, state, info) of a codec training folder (``codec.json``) or a pack (``manifest.json``)."""
    from safetensors.torch import load_file

    found = codec_dir_config(path)
    if found is None:
        raise FileNotFoundError(f"{path}: no codec.json or manifest.json")
    cfg, info = found
    return cfg, load_file(str(Path(path) / "codec.safetensors")), info


def load_tagger_dir(path: Path) -> tuple[TaggerConfig, dict[str, Tensor], dict[str, Any]]:
    """(config, float32 state, info) of a tagger training folder (``tagger.json``) or of the tagger of a
    model pack (``manifest.json``, verified by :func:`models.packs.pack.load_pack`; info = its provenance's
    ``tagger`` part with ``tagger_cfg``)."""
    from safetensors.torch import load_file

    path = Path(path)
    if (path / "tagger.json").is_file():
        info = json.loads((path / "tagger.json").read_text(encoding="utf-8"))
        state = load_file(str(path / "tagger.safetensors"))
        return (
            from_dict(TaggerConfig, info["tagger_cfg"]),
            {k: v.float() if v.is_floating_point() else v for k, v in state.items()},
            info,
        )
    if (path / "manifest.json").is_file():
        from models.packs.pack import load_pack

        pack = load_pack(path)
        assert pack.tagger_state is not None  # loaded in full, not tagging_only
        prov = pack.info.provenance if isinstance(pack.info.provenance, dict) else {}
        info = dict(prov.get("tagger") or {}) | {"tagger_cfg": to_dict(pack.tagger_cfg)}
        return (
            pack.tagger_cfg,
            {k: v.float() if v.is_floating_point() else v for k, v in pack.tagger_state.items()},
            info,
        )
    raise FileNotFoundError(f"{path}: no tagger.json or manifest.json")


def assemble_pack(
    codec_dir: Path,
    tagger_dir: Path,
    out: Path,
    name: str = "encotag-default",
    selection: Any = None,
    half: bool = False,
) -> Path:
    """Write a codec pack from a trained codec folder and tagger folder (see ``docs/TRAINING.md``).
    ``half`` stores the tagger's floating-point tensors as float16 (half the file; the pack loads them
    into float32 modules, see :func:`half_state`)."""
    from safetensors.torch import load_file

    from models.packs.pack import save_pack
    from models.resources import audioset_labels

    codec_cfg, codec_state, codec_info = load_codec_dir(codec_dir)
    if isinstance(codec_info.get("provenance"), dict):  # a pack's codec: keep how that codec was trained
        codec_info = dict(codec_info["provenance"].get("codec") or {})
    tinfo = json.loads((Path(tagger_dir) / "tagger.json").read_text(encoding="utf-8"))
    tagger_cfg = from_dict(TaggerConfig, tinfo["tagger_cfg"])
    metrics = dict(tinfo["metrics"])
    trusted = metrics.pop("trusted")
    for big in ("heldout_ap_augs", "train_positives", "heldout_positives_augs"):
        metrics.pop(big, None)
    provenance = {
        "commit": git_commit(Path(__file__).resolve().parents[2]),
        "created_by": "encotag train pack",
        "codec": {
            k: codec_info.get(k)
            for k in ("codec_cfg", "train_cfg", "metrics", "data", "corpus", "init", "command")
        },
        "tagger": {
            k: tinfo.get(k)
            for k in (
                "distill_cfg",
                "feature_cfg",
                "data",
                "corpus",
                "teacher",
                "codec_hash",
                "init",
                "command",
                "selection",
                "calibration",
                "average",
            )
        },
        "tagger_metrics": metrics,
        "selection": selection,
        "trusted_rule": (
            "teacher p>=0.5 positives in training >= 20 and held-out AP (student vs teacher labels) >= 0.5 "
            "on >= 5 held-out positives, counted on 2-s segments of held-out recordings"
            + (
                " the stable hash draw holds out"
                if (tinfo.get("data") or {}).get("heldout_drawn_only")
                else ""
            )
            if metrics.get("trusted_unit") == "2-s segment"
            else "teacher p>=0.5 positives in training >= 20 and held-out AP (student vs teacher "
            "labels, clean + first augmented copy) >= 0.5"
        ),
    }
    tagger_state = load_file(str(Path(tagger_dir) / "tagger.safetensors"))
    if half:
        tagger_state = half_state(tagger_state)
        provenance["tagger_weights_dtype"] = "float16"
    path = save_pack(
        out,
        name=name,
        tagger_cfg=tagger_cfg,
        tagger_state=tagger_state,
        codec_cfg=codec_cfg,
        codec_state=codec_state,
        labels=audioset_labels(),
        trusted=trusted,
        window=WindowConfig(),
        licence=LICENCE,
        provenance=provenance,
        description="Compact EnCodec (trained on the Encotag corpus) + MobileNetV3 tagger "
        "distilled from EfficientAT mn04_as",
    )
    write_pack_readme(path, name, provenance, sum(bool(t) for t in trusted))
    return path


def half_state(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with every floating-point tensor as float16 (integer buffers unchanged)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def write_pack_readme(pack_dir: Path, name: str, provenance: dict[str, Any], n_trusted: int) -> None:
    """``README.md`` beside the manifest: licence, attribution, training summary and metrics (atomic)."""
    codec = provenance.get("codec") or {}
    tagger = provenance.get("tagger") or {}

    def table(sources: dict[str, Any]) -> str:
        return "\n".join(
            f"| {src} | {v.get('clips', '')} | {v.get('hours', 0):.2f} | {', '.join(v.get('licences', []))} |"
            for src, v in sorted(sources.items())
            if isinstance(v, dict)
        )

    tagger_sources: dict[str, Any] = {}
    for key, part in (tagger.get("data") or {}).items():
        if key.endswith("/train") and isinstance(part, dict):
            tagger_sources.update(part.get("sources") or {})
    head = "| source | clips | hours | licences |\n|---|---:|---:|---|\n"
    rows = (
        "Codec:\n\n"
        + head
        + table(codec.get("data") or {})
        + "\n\nTagger (teacher targets on these clips):\n\n"
        + head
        + table(tagger_sources)
    )
    cm = codec.get("metrics") or {}
    bw_rows = "\n".join(
        f"| {bw} | {m['n_q']} | {m['mel_distance']:.3f} | {m['si_sdr_db']:.1f} |"
        for bw, m in (cm.get("per_bandwidth") or {}).items()
    )
    tc = codec.get("train_cfg") or {}
    losses = "multi-scale mel + waveform L1 + commitment" + (
        f" + {tc['w_mel_align']:g} x mel alignment of the latent" if tc.get("w_mel_align") else ""
    )
    tm = {
        k: round(v, 3) if isinstance(v, float) else v
        for k, v in (provenance.get("tagger_metrics") or {}).items()
    }
    text = f"""# {name}: Encotag's default model pack

A compact EnCodec-architecture codec (24 kHz, trained for Encotag) and a MobileNetV3 tagger on its
quantized latents, distilled from EfficientAT mn04_as (527 AudioSet labels). Built by `encotag train pack`;
`manifest.json` holds the full provenance (configurations, data, commit, metrics).

## Licence
Weights: **{LICENCE}** (share-alike, because the training audio includes CC BY-SA 4.0 material: the Free
Spoken Digit Dataset and some mod_sounds files). Attribution for the training audio: the table below and
each set's `SOURCE.md` in `../shared/data/`. The teacher (EfficientAT mn04_as, (c) Florian Schmid) is MIT
licensed; its outputs were used as training targets only. AudioSet label names: Google, CC BY 4.0.
Evaluation-only data (RAVDESS, CC BY-NC-SA) was never used for training or model selection.

## Training audio
{rows}

## Codec quality (held-out composites, 5 s)
| kbps | codebooks | multi-scale log-mel distance | SI-SDR (dB) |
|---|---:|---:|---:|
{bw_rows}

Encoder: {cm.get("encoder_params", "?")} parameters, real-time factor
{cm.get("encoder_rtf", float("nan")):.4f} (1 CPU thread on a shared machine). Last training run:
{tc.get("steps", "?")} steps, loss = {losses}.

## Tagger
Teacher agreement on held-out clips (teacher p >= 0.5 as labels): mAP
{tm.get("heldout_map_clean")} over {tm.get("heldout_classes_clean")} classes (clean clips),
{tm.get("heldout_map_augs")} over {tm.get("heldout_classes_augs")} classes (clean + augmented copies);
top-1 agreement {tm.get("heldout_top1_clean")}.
Trusted labels: {n_trusted} of 527 ({provenance.get("trusted_rule")}); the app greys the others.

## Reproduce
See `docs/TRAINING.md`: `encotag train codec`, `encotag train tagger`, `encotag train pack`.
{_derived_tagger_text(provenance.get("tagger") or {})}"""
    tmp = Path(pack_dir) / "README.md.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(Path(pack_dir) / "README.md")


def save_tagger_dir(out: Path, model: Any, info: dict[str, Any]) -> None:
    """``tagger.safetensors`` + ``tagger.json`` in ``out`` (atomic)."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "tagger.safetensors.tmp"
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(out / "tagger.safetensors")
    tmpj = out / "tagger.json.tmp"
    tmpj.write_text(json.dumps(info, indent=1), encoding="utf-8")
    tmpj.replace(out / "tagger.json")


def tagger_cfg_of(dcfg: DistillConfig) -> dict[str, Any]:
    return to_dict(TaggerConfig(width=dcfg.width, frontend=dcfg.frontend))  # type: ignore[arg-type]


def _derived_tagger_text(tagger: dict[str, Any]) -> str:
    """README lines for a tagger made from others (``train average``, ``train calibrate``), or nothing."""
    lines = []
    avg = tagger.get("average")
    if isinstance(avg, dict):
        parts = ", ".join(
            f"`{f}` × {w:.2f}" for f, w in zip(avg.get("from", []), avg.get("weights", []), strict=False)
        )
        lines.append(
            f"The tagger is the weighted mean of trained taggers (`encotag train average`): {parts}."
        )
    cal = tagger.get("calibration")
    if isinstance(cal, dict):
        offs = ", ".join(
            f"{n} {v:+.2f}" for n, v in zip(cal.get("label_names", []), cal.get("offsets", []), strict=False)
        )
        where = {"held-undrawn": "held-out recordings outside the drawn evaluation set"}.get(
            str(cal.get("fit_on")), "training segments"
        )
        cap = cal.get("max_instead")
        capped = "" if cap is None else f", Music/Speech-instead rate capped at {100 * float(cap):.1f} %"
        lines.append(f"Label logit offsets fitted on {where} (`encotag train calibrate`{capped}): {offs}.")
    return "\n".join(lines) + ("\n" if lines else "")
