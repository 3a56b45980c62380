"""``encotag train features`` and ``encotag train tagger``: the caches the distillation reads, and the
distillation itself (see :mod:`app.commands.train` for the arguments).

- :func:`prepare_features` builds or reuses the base clips, the teacher-logit cache and, with ``--codec``,
  the code cache, shard by shard, and resumes where an earlier run stopped.
- :func:`run_tagger` distils the teacher into the codec-latent MobileNet (writes ``tagger.safetensors`` +
  ``tagger.json``: configs, data, held-out metrics, the command line); :func:`distill_config` its settings.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.commands.common import ProgressPrinter
from app.commands.train_data import clips_for, command_line, data_summary, evenly_spaced

log = logging.getLogger(__name__)


def teacher_file(args: argparse.Namespace) -> Path:
    """The teacher's weight file inside ``--teacher``."""
    from models.packs.teacher_pack import TEACHER_FILE

    return Path(args.teacher) / TEACHER_FILE


def _code_codec(ccfg: Any, cstate: Any, chash: str, threads: int) -> Any:
    """The codec that codes the corpus: the pack's tagging codec (encoder and codebooks), with the ONNX
    Runtime encoder where it is installed and agrees with torch (the engine's choice, so the training codes
    are the codes the app computes; ``ENCOTAG_ENCODER=torch`` keeps torch)."""
    from models.codec.ort_encoder import attach_ort_encoder, backend_choice
    from models.codec.tagging_codec import TaggingCodec

    codec = TaggingCodec.from_state(ccfg, cstate)
    if backend_choice() != "torch":
        attach_ort_encoder(codec, f"train-{chash}", max(1, int(threads)))
    return codec


def training_sources(corpus: Path, clips: set[str]) -> dict[str, Any]:
    """Clips, hours and licences per source of the manifest rows in ``clips`` (the training split)."""
    import csv

    out: dict[str, Any] = {}
    with (corpus / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r.get("clip") not in clips:
                continue
            s = out.setdefault(r.get("source") or "unknown", {"clips": 0, "hours": 0.0, "licences": []})
            s["clips"] += 1
            try:
                s["hours"] += float(r.get("duration") or 0.0) / 3600
            except ValueError:
                pass
            for lic in (r.get("licence") or "").split("; "):
                if lic and lic not in s["licences"]:
                    s["licences"].append(lic)
    for s in out.values():
        s["hours"] = round(s["hours"], 4)
    return out


def prepare_per_clip(args: argparse.Namespace) -> tuple[Any, Any, Any, dict[str, Any]]:
    """``--per-clip``: codes and teacher logits of every clip of one corpus, cached per clip (built first
    where missing); the corpus ``val`` split less its mixtures is the held-out set; train segments carry
    class-balanced sampling weights (``--balance``)."""
    import numpy as np

    from models.nets.tagger import teacher_tagger
    from models.training.corpus_features import build_codes, code_cache_dir, codec_shape, load_distill_data
    from models.training.corpus_split import drawn_clips, per_clip_split
    from models.training.coverage import boost_weights, parse_boosts, read_manifest, teacher_segment_logits
    from models.training.distill import codebook_table
    from models.training.features import state_hash
    from models.training.outputs import load_codec_dir

    if len(args.corpus) != 1 or args.codec is None:
        raise ValueError("--per-clip takes exactly one --corpus folder and a --codec")
    boosts = parse_boosts(getattr(args, "boost_source", None) or [])
    corpus = args.corpus[0]
    rows = read_manifest(corpus)
    ccfg, cstate, _ = load_codec_dir(args.codec)
    chash = state_hash(cstate)
    codec = _code_codec(ccfg, cstate, chash, getattr(args, "threads", 1))
    code_dir = code_cache_dir(args.features or corpus, chash)
    teacher = teacher_tagger(teacher_file(args))
    logits = teacher_segment_logits(
        corpus,
        rows,
        teacher,
        corpus / "teacher_segments",
        progress=_progress("teacher", corpus.name),
        reverse=args.reverse,
    )
    drawn_only = bool(getattr(args, "drawn_only", False))
    drawn = drawn_clips(corpus) if drawn_only else None
    idx = per_clip_split(rows, drawn)
    train_codes = bool(getattr(args, "train_codes", True))  # False: the training split's teacher side only
    coded = rows if train_codes else [rows[i] for i in idx["held"]]
    progress = _progress("codes", corpus.name)
    build_codes(corpus, coded, codec, code_dir, progress=progress, reverse=args.reverse)
    n_q, n_frames = codec_shape(codec)
    if drawn_only and not idx["held"]:
        raise ValueError(f"{corpus}: no held-out clip whose recording the stable hash draw holds out")
    dropped = len(rows) - len(idx["train"]) - len(idx["held"])  # val mixtures: see CorpusRow.held_out
    split = {name: [rows[i] for i in sel] for name, sel in idx.items()}
    out = {}
    wmax, share = 1.0, 0.0
    for name, sel in split.items():
        lg = logits[np.array(idx[name], dtype=int)]
        data, weights = load_distill_data(
            sel, lg, code_dir, n_q, n_frames, args.balance, with_codes=train_codes or name != "train"
        )
        if name == "train" and boosts:
            weights, share = boost_weights(weights, sel, boosts)
            log.info("boosted sources %s: %.1f %% of the draw", boosts, 100 * share)
        if name == "train" and (args.balance > 0 or boosts):  # else uniform draws (no weights)
            data.seg_weights = weights
            wmax = float(np.max(weights)) if weights.size else 1.0
        out[name] = data
    info: dict[str, Any] = {
        "feature_cfg": {"per_clip": True, "clip_s": 10.0, "seg_s": 2.0, "n_aug": 1, "balance": args.balance}
        | ({"boost_source": boosts} if boosts else {}),
        "codec_hash": chash,
        "data": {
            "corpus": str(corpus),
            "train_clips": len(split["train"]),
            "heldout_clips": len(split["held"]),
            "heldout_drawn_only": drawn_only,  # only recordings the stable hash draw holds out
            "val_mixtures_left_out": dropped,
            "train_hours": round(len(split["train"]) * 10 / 3600, 2),
            "weights_max_over_mean": round(wmax, 2),
            **({"boosted_share": round(share, 4)} if boosts else {}),
            # per source: clips, hours, licences (the pack's README and manifest list them)
            f"{corpus}/train": {"sources": training_sources(corpus, {r.clip for r in split["train"]})},
        },
    }
    return out["train"], out["held"], codebook_table(codec), info


def prepare_features(args: argparse.Namespace) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Build (or reuse) the base clips, teacher cache and — with ``--codec`` — the code cache.

    Returns (train DistillData | None, held-out DistillData | None, codebook table | None, info).
    """
    import dataclasses

    if getattr(args, "per_clip", False):
        return prepare_per_clip(args)

    import numpy as np
    import torch

    from models.training.distill import (
        SHORT_SEG_S,
        DistillData,
        codebook_table,
        data_key,
    )
    from models.training.features import (
        FeatureConfig,
        build_code_cache,
        build_teacher_cache,
        compose,
        load_clips,
        state_hash,
    )
    from models.training.outputs import load_codec_dir

    fcfg = FeatureConfig(n_aug=args.n_aug)
    feats: Path = args.features or args.out / "features"
    feats.mkdir(parents=True, exist_ok=True)
    codec = None
    chash = None
    if args.codec is not None:
        from models.codec.codec import Codec

        ccfg, cstate, _ = load_codec_dir(args.codec)
        codec = Codec.from_state(ccfg, cstate)
        chash = state_hash(cstate)
    teacher = None
    parts: dict[str, list[Any]] = {"train": [], "held": []}
    info: dict[str, Any] = {"feature_cfg": dataclasses.asdict(fcfg), "codec_hash": chash, "data": {}}
    splits = ("train", "held") if getattr(args, "split", "both") == "both" else (args.split,)
    plan = [(c, splits) for c in args.corpus] + [
        (c, tuple(x for x in ("held",) if x in splits)) for c in (args.heldout or [])
    ]

    def teacher_cache(path: Path, base: Any, what: str, name: str, **kw: Any) -> Path:
        """``path``, built first (teacher logits of ``base``) when missing; the teacher loads once."""
        nonlocal teacher
        if not path.exists():
            if teacher is None:
                from models.nets.tagger import teacher_tagger

                teacher = teacher_tagger(teacher_file(args))
            progress = _progress(what, name)
            build_teacher_cache(
                base, teacher, path, fcfg, progress=progress, reverse=getattr(args, "reverse", False), **kw
            )
        return path

    for corpus, corpus_splits in plan:
        train, held = clips_for(corpus)
        todo = [("train", train, f"{corpus.name}/train")]
        if args.max_clips is not None and (corpus / "manifest.csv").is_file():
            k = max(1, getattr(args, "shards", 1))
            todo = [
                (
                    "train",
                    evenly_spaced(train, args.max_clips, j / k),
                    f"{corpus.name}/train" + f"[{j}]" * (j > 0),
                )
                for j in range(k)
            ]
        for split, clips, name in todo + [("held", held, f"{corpus.name}/held")]:
            if split not in corpus_splits or not clips:
                continue
            key = data_key([str(c.path) for c in clips], dataclasses.asdict(fcfg))
            base_path = feats / f"base_{split}_{key}.npy"
            if not base_path.exists():
                audio = load_clips(clips, 24000)
                summary = data_summary(clips, audio, 24000)
                (feats / f"data_{split}_{key}.json").write_text(json.dumps(summary, indent=1))
                base16 = compose(audio, fcfg.clip_s, 24000, fcfg.seed).astype(np.float16)
                tmp = feats / f"base_{split}_{key}.tmp.npy"
                np.save(tmp, base16)
                tmp.replace(base_path)
            summary = json.loads((feats / f"data_{split}_{key}.json").read_text())
            base = np.load(base_path).astype(np.float32)
            if len(base) == 0:
                raise ValueError(f"{corpus}: no {split} audio long enough for {fcfg.clip_s:g} s clips")
            info["data"][name] = {"sources": summary, "clips_10s": int(len(base))}
            log.info("%s: %d clips of %.0f s", name, len(base), fcfg.clip_s)
            tcache = np.load(teacher_cache(feats / f"teacher_{split}_{key}.npz", base, "teacher", name))
            short = None
            if split == "train" and getattr(args, "p_short", 0.0) > 0:
                spath = feats / f"teacher{SHORT_SEG_S:g}s_{split}_{key}.npz"
                what = f"teacher {SHORT_SEG_S:g} s"
                teacher_cache(spath, base, what, name, seg_s=SHORT_SEG_S, whole=False)
                short = np.load(spath)["seg_logits"]
            seg_emb = None
            if split == "train" and getattr(args, "feat_kd", 0.0) > 0:
                epath = feats / f"teacheremb_train_{key}.npz"
                teacher_cache(epath, base, "teacher embeddings", name, whole=False, embeddings=True)
                seg_emb = np.load(epath)["seg_emb"]
            if codec is None:
                continue
            cpath = feats / f"codes_{split}_{key}_{chash}.npz"
            if not cpath.exists():
                with torch.inference_mode():
                    build_code_cache(
                        base,
                        codec,
                        cpath,
                        fcfg,
                        progress=_progress("codes", name),
                        reverse=getattr(args, "reverse", False),
                    )
            parts[split].append(
                DistillData(np.load(cpath)["codes"], tcache["logits"], tcache["seg_logits"], short, seg_emb)
            )
    out = {
        split: DistillData(
            np.concatenate([d.codes for d in ds]),
            np.concatenate([d.logits for d in ds]),
            np.concatenate([d.seg_logits for d in ds]),
            _concat_optional([d.short_logits for d in ds]),
            _concat_optional([d.seg_emb for d in ds]),
        )
        if ds
        else None
        for split, ds in parts.items()
    }
    table = codebook_table(codec) if codec is not None else None
    return out["train"], out["held"], table, info


def _concat_optional(arrays: list[Any]) -> Any:
    """The arrays concatenated, or None when any of them is None."""
    import numpy as np

    return None if any(a is None for a in arrays) else np.concatenate(arrays)


def _progress(what: str, name: str) -> Callable[[int, int], None]:
    """A ``(done, total)`` callback showing ``<what> <name>`` progress (the CLI's one printer)."""
    return ProgressPrinter(f"{what} {name}").counter()


def distill_config(args: argparse.Namespace) -> Any:
    """The :class:`models.training.distill.DistillConfig` of ``encotag train tagger``'s arguments."""
    from models.training.distill import DistillConfig

    return DistillConfig(
        frontend=args.frontend,
        width=args.width,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        beta=args.beta,
        p_short=args.p_short,
        feat_kd=args.feat_kd,
        mask_time=args.mask_time,
        mask_chan=args.mask_chan,
        rank_kd=args.rank_kd,
        rank_tau=args.rank_tau,
        anchor_kd=args.anchor_kd,
        teacher_init=not args.no_teacher_init,
        seed=args.seed,
    )


def run_tagger(args: argparse.Namespace) -> int:
    import dataclasses
    import time

    from models.nets.tagger import load_teacher_state
    from models.training.distill import train_tagger
    from models.training.outputs import save_tagger_dir, tagger_cfg_of
    from models.training.student_eval import evaluate_student

    if args.codec is None and args.bundle is None:
        print("encotag train: tagger needs --codec (or --bundle)", file=sys.stderr)
        return 2
    ckpt = args.out / "tagger_ckpt.safetensors"
    if ckpt.exists() and not args.resume:
        print(f"encotag train: {ckpt} exists: pass --resume or choose another --out", file=sys.stderr)
        return 2
    if args.bundle is not None:  # train export's bundle: the training split alone, no held-out scoring
        import torch

        from models.training.bundle import read_bundle

        if args.corpus or getattr(args, "boost_source", None):
            raise ValueError("--bundle replaces --corpus and --boost-source (set by train export)")
        bundle = read_bundle(args.bundle)
        train, held, table = bundle.data, None, torch.from_numpy(bundle.table)
        info = dict(bundle.info) | {"bundle": str(args.bundle)}
    elif not args.corpus or args.teacher is None:
        print("encotag train: tagger needs --corpus and --teacher (or --bundle)", file=sys.stderr)
        return 2
    else:
        train, held, table, info = prepare_features(args)
    dcfg, t0 = distill_config(args), time.monotonic()
    if args.init is not None:
        from safetensors.torch import load_file

        tstate = load_file(str(args.init / "tagger.safetensors"))
        info["init"] = str(args.init)
    elif args.teacher is not None:
        tstate = load_teacher_state(teacher_file(args))
    else:
        print("encotag train: --bundle needs --init or --teacher (the warm start)", file=sys.stderr)
        return 2
    anchor_state = None
    if args.anchor_kd > 0:
        if args.anchor is None:
            print("encotag train: --anchor-kd needs --anchor (a tagger folder or pack)", file=sys.stderr)
            return 2
        from models.training.outputs import load_tagger_dir

        _, anchor_state, _ = load_tagger_dir(args.anchor)  # a training folder or a verified pack
        info["anchor"] = str(args.anchor)
    model = train_tagger(
        dcfg, train, table, args.out, teacher_state=tstate, max_steps=args.max_steps,
        init_from=f"the tagger of {args.init}" if args.init is not None else "the teacher",
        device=args.device, anchor_state=anchor_state,
    )  # fmt: skip
    train_s = time.monotonic() - t0
    augs = tuple(int(a) for a in args.eval_augs.split(","))
    # per-clip corpora hold out whole recordings of every source: trusted is scored on 2-s segments
    per_clip = bool(getattr(args, "per_clip", False))
    metrics: dict[str, Any] = {"held_out": "not scored here: trained from a bundle (encotag train score)"}
    if held is not None:
        metrics = evaluate_student(
            model, train, held, table, augs=augs, min_pos_trusted=5 if per_clip else 3, segments=per_clip
        )
    info.update(
        {
            "tagger_cfg": tagger_cfg_of(dcfg),
            "distill_cfg": dataclasses.asdict(dcfg),
            "metrics": metrics,
            "corpus": [str(c) for c in args.corpus] or info.get("corpus", []),
            "teacher": str(args.teacher) if args.teacher is not None else info.get("teacher"),
            "device": args.device,
            "train_seconds_this_run": round(train_s, 1),
            "command": command_line(args),
        }
    )
    save_tagger_dir(args.out, model, info)
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, list)}, indent=1))
    return 0
