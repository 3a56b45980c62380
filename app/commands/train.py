"""``encotag train codec|features|tagger|pack``: reproduce the default pack from the corpus.

- ``train codec --corpus DIR --out DIR [--steps N] [--resume]``: compact EnCodec; writes
  ``codec.safetensors`` + ``codec.json`` (config, training config, data summary, held-out quality).
- ``train features --corpus DIR --codec DIR --teacher DIR --out DIR``: codes + teacher logits cache.
- ``train tagger --corpus DIR --codec DIR --teacher DIR --out DIR [--frontend F --width W --steps N]``:
  distillation; builds the feature cache first if needed; writes ``tagger.safetensors`` + ``tagger.json``.
- ``train pack --codec DIR --tagger DIR --out DIR``: assemble a model pack (manifest + weights).

``--corpus`` is a corpus folder (``manifest.csv``) or a ``../shared/data`` folder (permissive train
splits only). Runs resume from their checkpoints with ``--resume``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from app.commands.train_data import clips_for, command_line, data_summary

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train the codec and the distilled tagger, assemble a pack")
    tsub = p.add_subparsers(dest="what", metavar="WHAT", required=True)

    c = tsub.add_parser("codec", help="train a compact EnCodec on the corpus")
    _common(c)
    c.add_argument("--steps", type=int, default=1000)
    c.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (resumable)")
    c.add_argument("--batch-size", type=int, default=8)
    c.add_argument("--segment-s", type=float, default=1.0)
    c.add_argument("--num-filters", type=int, default=8)
    c.add_argument("--lstm-layers", type=int, default=1)
    c.add_argument("--codebook-size", type=int, default=1024)
    c.add_argument("--bandwidths", default="1.5,3,6", help="kbps, comma-separated; the last is the default")
    c.add_argument("--lr", type=float, default=1e-3)
    c.add_argument("--eval-clips", type=int, default=24)
    c.add_argument(
        "--init",
        type=Path,
        default=None,
        help="warm start from a trained codec folder or pack (one with fewer filters, a divisor of "
        "--num-filters, is widened to the same function)",
    )
    c.add_argument(
        "--mel-align",
        type=float,
        default=0.0,
        help="weight of the loss aligning latent dims with the teacher's log-mel bands (0: off)",
    )

    f = tsub.add_parser("features", help="cache codec codes + teacher logits of augmented clips")
    _common(f)
    _feature_args(f)

    t = tsub.add_parser("tagger", help="distil the teacher into the codec-latent MobileNet")
    _common(t, corpus_required=False)
    _feature_args(t, teacher_required=False)
    t.add_argument(
        "--bundle",
        type=Path,
        default=None,
        help="train from a distillation bundle (`train export`) instead of --corpus/--codec/--teacher; "
        "no held-out scoring (use `train score`)",
    )
    t.add_argument("--device", default="cpu", help="torch device to train on: cpu (default), cuda, cuda:1, …")
    t.add_argument("--frontend", choices=("latent_direct", "latent_proj"), default="latent_direct")
    t.add_argument("--width", type=float, default=0.4)
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=8e-4)
    t.add_argument("--beta", type=float, default=0.9)
    t.add_argument(
        "--feat-kd",
        type=float,
        default=0.0,
        help="weight of a loss pulling the student's mid-level embedding towards the teacher's on each "
        "2-s segment (builds a teacher-embedding cache; 0: off)",
    )
    t.add_argument(
        "--mask-time",
        type=float,
        default=0.0,
        help="latent masking: one span of up to this share of the frames",
    )
    t.add_argument(
        "--mask-chan",
        type=float,
        default=0.0,
        help="latent masking: up to this share of the latent's channels",
    )
    t.add_argument(
        "--rank-kd",
        type=float,
        default=0.0,
        help="weight of a listwise loss asking for the teacher's order of the classes within each segment "
        "(softmax KL; 0: off)",
    )
    t.add_argument("--rank-tau", type=float, default=1.0, help="temperature of the --rank-kd softmax")
    t.add_argument(
        "--weight-decay",
        type=float,
        default=1e-4,
        help="AdamW's decoupled weight decay (regularisation against fitting the training recordings)",
    )
    t.add_argument(
        "--anchor",
        type=Path,
        default=None,
        help="reference tagger folder or pack (same width): --anchor-kd holds the student's mid-level "
        "embedding near its own",
    )
    t.add_argument(
        "--anchor-kd",
        type=float,
        default=0.0,
        help="weight of the embedding anchor to --anchor (keeps the linear probes of the reference; 0: off)",
    )
    t.add_argument("--eval-augs", default="0,1", help="held-out augmentations pooled for the trusted labels")
    t.add_argument("--init", type=Path, default=None, help="start from a trained tagger folder (warm start)")
    t.add_argument("--no-teacher-init", action="store_true", help="random init even at the teacher's width")

    b = tsub.add_parser("calibrate", help="fit label logit offsets of a trained tagger (Speech, Music)")
    _common(b)
    _feature_args(b)
    b.add_argument("--tagger", required=True, type=Path, help="trained tagger folder to calibrate")
    b.add_argument("--labels", default="Speech,Music", help="comma list of AudioSet label names")
    b.add_argument("--max-segments", type=int, default=40000, help="evenly spaced fitting segments used")
    b.add_argument(
        "--fit-on",
        choices=("train", "held-undrawn"),
        default="train",
        help="fitting segments: training clips, or (with --per-clip --drawn-only) the held-out clips the "
        "hash draw does not hold out, so the drawn set that scores the result never enters the fit",
    )
    b.add_argument(
        "--max-instead",
        type=float,
        default=None,
        metavar="PCT",
        help="fit one or two offsets jointly: best top-1 agreement with the labels-instead-of-another "
        "rate at most PCT %% on the fitting segments (default: top-1 agreement alone)",
    )

    a = tsub.add_parser("average", help="the weighted mean of trained taggers of one lineage (a model soup)")
    _common(a)
    _feature_args(a)
    a.add_argument(
        "--tagger",
        required=True,
        type=Path,
        action="append",
        help="tagger folder or pack (repeat: 2 or more)",
    )
    a.add_argument("--weights", default="", help="comma list, one per --tagger (default: equal)")

    e = tsub.add_parser(
        "export",
        help="write a per-clip corpus's training split as a distillation bundle (to train elsewhere)",
    )
    _common(e)
    _feature_args(e)
    e.add_argument("--part-mb", type=float, default=32.0, help="about this many MB per bundle part")

    s = tsub.add_parser(
        "score", help="taggers side by side on the broad held-out segments, from the per-clip caches"
    )
    _common(s)
    _feature_args(s)
    s.add_argument(
        "--tagger", required=True, type=Path, action="append", help="tagger folder or pack (repeatable)"
    )
    s.add_argument(
        "--fit-clips",
        type=int,
        default=0,
        help="also score N evenly spaced original training clips (the fit)",
    )

    k = tsub.add_parser("pack", help="assemble a model pack from a trained codec and tagger")
    k.add_argument("--codec", required=True, type=Path)
    k.add_argument("--tagger", required=True, type=Path)
    k.add_argument("--out", required=True, type=Path)
    k.add_argument("--name", default="encotag-default")
    k.add_argument(
        "--selection", type=Path, default=None, help="JSON with the model-selection runs (provenance)"
    )
    k.add_argument(
        "--half", action="store_true", help="store the tagger's weights as float16 (room for a wider tagger)"
    )
    for q in (c, f, t, b, a, e, s, k):
        q.set_defaults(func=run)


def _common(p: argparse.ArgumentParser, corpus_required: bool = True) -> None:
    p.add_argument(
        "--corpus",
        required=corpus_required,
        default=[],
        type=Path,
        nargs="+",
        help="corpus folder(s) (manifest.csv) or ../shared/data",
    )
    p.add_argument("--out", required=True, type=Path, help="output / work folder")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)


def _feature_args(p: argparse.ArgumentParser, teacher_required: bool = True) -> None:
    p.add_argument("--codec", type=Path, default=None, help="codec training folder or pack")
    p.add_argument(
        "--teacher", required=teacher_required, type=Path, help="teacher folder (mn04_as_mAP_432.pt)"
    )
    p.add_argument("--features", type=Path, default=None, help="feature cache root (default OUT/features)")
    p.add_argument("--n-aug", type=int, default=4)
    p.add_argument(
        "--max-clips", type=int, default=None, help="train clips per corpus folder (evenly spaced)"
    )
    p.add_argument(
        "--shards",
        type=int,
        default=1,
        help="with --max-clips: K disjoint evenly spaced selections, each cached on its own",
    )
    p.add_argument("--heldout", type=Path, nargs="+", default=None, help="extra held-out-only folders")
    p.add_argument(
        "--p-short",
        type=float,
        default=0.0,
        help="share of segment batches of 1-s segments (the app's window); builds their teacher logits",
    )
    p.add_argument("--reverse", action="store_true", help="features: work from the last chunk (a 2nd worker)")
    p.add_argument("--split", choices=("train", "held", "both"), default="both", help="features: which split")
    p.add_argument(
        "--per-clip",
        action="store_true",
        help="one corpus, each clip once (its augmentation is in the corpus): per-clip code and teacher "
        "caches, the corpus val split held out (docs/TRAINING.md, everyday sounds)",
    )
    p.add_argument(
        "--drawn-only",
        action="store_true",
        help="with --per-clip: score held-out figures and trusted labels only on the recordings the stable "
        "hash draw holds out (held out in every build; docs/EVALUATION.md)",
    )
    p.add_argument(
        "--balance",
        type=float,
        default=0.5,
        help="with --per-clip: sample 2-s segments with weight 1/frequency**B of their rarest confident "
        "teacher class (0: uniform; default 0.5)",
    )
    p.add_argument(
        "--boost-source",
        action="append",
        default=[],
        metavar="NAME=K",
        help="with --per-clip: draw the training segments of source NAME (and NAME+aug, NAME+train) K times "
        "as often as --balance alone would (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(max(1, getattr(args, "threads", 1)))
    try:
        if args.what == "codec":
            return _codec(args)
        if args.what == "pack":
            from models.training.outputs import assemble_pack

            selection = json.loads(args.selection.read_text()) if args.selection else None
            path = assemble_pack(
                args.codec, args.tagger, args.out, name=args.name, selection=selection, half=args.half
            )
            print(f"pack written to {path}")
            return 0
        from app.commands.train_tagger import prepare_features, run_tagger

        if args.what == "features":
            prepare_features(args)
            return 0
        if args.what == "average":
            from app.commands.train_average import run_average

            return run_average(args)
        if args.what == "export":
            from app.commands.train_bundle import run_export

            return run_export(args)
        if args.what == "score":
            from app.commands.train_score import run_score

            return run_score(args)
        if args.what == "calibrate":
            from app.commands.train_calibrate import run_calibrate

            return run_calibrate(args)
        return run_tagger(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"encotag train: {exc}", file=sys.stderr)
        return 2


def _codec(args: argparse.Namespace) -> int:
    import dataclasses

    from safetensors.torch import save_file

    from models.config import CodecConfig, to_dict
    from models.training.codec_train import CodecTrainConfig, evaluate_codec, train_codec
    from models.training.features import load_clips

    out: Path = args.out
    ckpt = out / "codec_ckpt.safetensors"
    if ckpt.exists() and not args.resume:
        print(f"encotag train: {ckpt} exists: pass --resume or choose another --out", file=sys.stderr)
        return 2
    bws = tuple(float(b) for b in args.bandwidths.split(","))
    cfg = CodecConfig(
        num_filters=args.num_filters,
        num_lstm_layers=args.lstm_layers,
        codebook_size=args.codebook_size,
        target_bandwidths=bws,
        bandwidth=bws[-1],
    )
    tcfg = CodecTrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        segment_s=args.segment_s,
        lr=args.lr,
        w_mel_align=args.mel_align,
        seed=args.seed,
    )
    train, held = [], []
    for corpus in args.corpus:
        tr, he = clips_for(corpus)
        train += tr
        held += he
    audio = load_clips(train, cfg.sampling_rate)
    log.info(
        "codec training on %d clips (%.2f h)", len(audio), sum(map(len, audio)) / cfg.sampling_rate / 3600
    )
    init_state = None
    if args.init is not None:
        from safetensors.torch import load_file

        init_file = args.init / "codec.safetensors" if args.init.is_dir() else args.init
        if not init_file.is_file():
            raise FileNotFoundError(f"{args.init}: no codec.safetensors to warm-start from")
        from models.codec.codec import complete_state

        init_state = complete_state(load_file(str(init_file)))  # a pack leaves out the EMA buffers
        log.info("codec warm start from %s", init_file)
        from models.training.outputs import codec_dir_config

        found = codec_dir_config(args.init) if args.init.is_dir() else None  # a bare file has no config
        init_cfg = found[0] if found is not None else None
        if init_cfg is not None and init_cfg.num_filters != cfg.num_filters:
            from models.training.widen import widen_codec_state

            init_state = widen_codec_state(init_state, init_cfg, cfg, seed=args.seed)
            log.info("warm start widened from %d to %d filters", init_cfg.num_filters, cfg.num_filters)
    model = train_codec(cfg, tcfg, audio, out, max_steps=args.max_steps, init_state=init_state)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "codec.safetensors.tmp"
    save_file(state, str(tmp))
    tmp.replace(out / "codec.safetensors")
    from models.training.features import compose

    held_audio = compose(load_clips(held, cfg.sampling_rate), 5.0, cfg.sampling_rate, seed=args.seed)
    pick = held_audio[:: max(1, len(held_audio) // args.eval_clips)][: args.eval_clips]
    metrics = evaluate_codec(model, cfg, list(pick))
    info = {
        "codec_cfg": to_dict(cfg),
        "train_cfg": dataclasses.asdict(tcfg),
        "metrics": metrics,
        "data": data_summary(train, audio, cfg.sampling_rate),
        "corpus": [str(c) for c in args.corpus],
        "init": str(args.init) if args.init is not None else None,
        "command": command_line(args),
        "held_out": f"{len(pick)} composites of 5 s from {len(held)} held-out clips",
    }
    tmpj = out / "codec.json.tmp"
    tmpj.write_text(json.dumps(info, indent=1), encoding="utf-8")
    tmpj.replace(out / "codec.json")
    print(json.dumps(metrics, indent=1))
    return 0
