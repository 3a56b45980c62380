"""How much a codec's latent knows, cheaply: a linear probe on latent statistics.

For each clip the codec's latent (quantized at the codec's default bandwidth, or before quantization with
``--raw``) is summarised by its mean and standard deviation over time (2 × 128 dims); a standardised
logistic regression (C = 0.1) is trained on the ``train`` split and scored on the ``test`` split of
FSDD (digits and speakers) and, when it has been rendered by ``encotag eval``, the fluidsynth pitch set.
The mel-statistics baseline of ``encotag eval`` is the same kind of probe on 128 log-mel bands, so the
figures say how far the latent is from a plain spectrogram. Used to follow codec training
(``docs/TRAINING.md``); needs scikit-learn (the ``test`` extra).

    python tools/codec_probe.py CODEC [--raw] [--no-pitch] [--data ../shared/data] [--pitch DIR]

``CODEC`` is a model pack, a ``train codec`` folder (``codec.safetensors`` + ``codec.json``) or a
training checkpoint (``codec_ckpt.safetensors``; the configuration is read from ``codec.json`` beside it,
or ``--config``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.audio import load_audio  # noqa: E402
from models.codec.codec import Codec  # noqa: E402
from models.config import CodecConfig  # noqa: E402


def load_codec(path: Path, config: Path | None) -> Codec:
    """The codec of a pack folder, a ``train codec`` folder or a checkpoint file."""
    from models.config import from_dict
    from models.training.outputs import load_codec_dir

    if path.is_dir():
        cfg, state, _ = load_codec_dir(path)
    else:
        from models.training.checkpoint import load_checkpoint

        cfg_file = config or path.with_name("codec.json")
        cfg = from_dict(CodecConfig, json.loads(cfg_file.read_text(encoding="utf-8"))["codec_cfg"])
        state = load_checkpoint(path)["model"]
    return Codec.from_state(cfg, state).eval()


def latent_stats(codec: Codec, folder: Path, raw: bool) -> tuple[np.ndarray, list[dict[str, str]]]:
    """``(n_clips, 256)`` mean ‖ std of the latent of every clip in ``folder/labels.csv``, and the rows."""
    rows = list(csv.DictReader((folder / "labels.csv").open(newline="", encoding="utf-8")))
    feats = []
    for r in rows:
        x = load_audio(folder / r["file"], codec.sample_rate)
        x = np.pad(x, (0, max(0, codec.hop_length * 8 - len(x))))
        with torch.inference_mode():
            t = torch.from_numpy(x)[None]
            z = (codec.embed(t) if raw else codec.latent(t))[0].numpy()
        feats.append(np.concatenate([z.mean(axis=1), z.std(axis=1)]))
    return np.stack(feats), rows


def probe(x: np.ndarray, labels: list[str], splits: list[str]) -> float:
    """Test accuracy of a standardised logistic regression trained on the ``train`` rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.array(labels)
    tr = np.array([s == "train" for s in splits])
    te = np.array([s == "test" for s in splits])
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
    clf.fit(x[tr], y[tr])
    return float((clf.predict(x[te]) == y[te]).mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("codec", type=Path)
    p.add_argument("--config", type=Path, default=None, help="codec.json for a checkpoint elsewhere")
    p.add_argument("--raw", action="store_true", help="probe the latent before quantization")
    p.add_argument("--no-pitch", action="store_true")
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    pitch = Path.home() / ".cache" / "encotag" / "eval-work" / "pitch-v1"
    p.add_argument("--pitch", type=Path, default=pitch, help="pitch set rendered by encotag eval")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    codec = load_codec(args.codec, args.config)
    t0 = time.monotonic()
    x, rows = latent_stats(codec, args.data / "fsdd", args.raw)
    splits = [r["split"] for r in rows]
    res: dict[str, float] = {
        "fsdd_digits": probe(x, [r["label"] for r in rows], splits),
        "fsdd_speaker": probe(x, [r["speaker"] for r in rows], splits),
    }
    if not args.no_pitch and (args.pitch / "labels.csv").is_file():
        xp, prow = latent_stats(codec, args.pitch, args.raw)
        res["pitch"] = probe(xp, [r["label"] for r in prow], [r["split"] for r in prow])
    res["seconds"] = round(time.monotonic() - t0, 1)
    sys.stdout.write(json.dumps({"codec": str(args.codec), "raw": args.raw, **res}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
