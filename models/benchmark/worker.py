"""Benchmark worker process: ``python -m models.benchmark.worker SPEC.json OUT.json``.

Measures one subject (see :mod:`models.benchmark.runner`) and writes its results as JSON: import and
load times, per-stage rows, scaling rows, the long file, the folder, the live path and the process's
peak RSS. Runs torch with ``config.threads`` threads.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from models.benchmark.timing import peak_rss_mb, rss_mb

log = logging.getLogger(__name__)


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """All measurements of ``spec["subject"]`` in this process."""
    cfg = spec["config"]
    work = spec["workloads"]
    t0 = time.perf_counter()
    import torch

    from models.benchmark import stages
    from models.tagging.engine import Engine

    torch.set_num_threads(int(cfg["threads"]))
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = Engine.load(spec["subject"]["path"], threads=int(cfg["threads"]))  # as stated, not auto
    t_load = time.perf_counter() - t0
    out: dict[str, Any] = {
        "subject": spec["subject"],
        "pack_name": engine.info.name,
        "sample_rate": engine.sample_rate,
        "window": {"window_s": engine.window.window_s, "hop_s": engine.window.hop_s},
        "import_s": t_import,
        "load_s": t_load,
        "rss_after_load_mb": rss_mb(),
    }
    out["encoder_backend"] = engine.encoder_backend  # what the engine picked by itself
    if engine.codec is not None:
        c = engine.codec.cfg
        out["codec"] = {
            "num_filters": c.num_filters,
            "lstm_layers": c.num_lstm_layers,
            "bandwidth": c.bandwidth,
        }
    repeat, budget = int(cfg["repeat"]), float(cfg["budget_s"])
    from safetensors.torch import load_file

    from models.nets.tagger import Tagger
    from models.packs.pack import TAGGER_FILE

    unfused = Tagger(engine.pack.tagger_cfg, engine.pack.mel_cfg)  # as loaded, before optimizing
    # the engine's pack keeps no state dicts (Engine.load is tagging_only): read the verified file again
    unfused.load_state_dict(load_file(str(engine.pack.path / TAGGER_FILE)), strict=True)
    unfused.eval()
    out["stages"] = stages.stage_rows(
        engine, Path(work["clip"]), repeat=repeat, budget_s=budget, unfused_tagger=unfused
    )
    del unfused
    if spec.get("long") and work.get("long"):
        out["long_file"] = stages.long_file_row(engine, Path(work["long"]))
    if work.get("files"):
        from models.tagging.pipeline import tag_file

        files = [Path(p) for p in work["files"]]
        for _ in tag_file(engine, files[0]):  # warm-up: the first call of each path is slower
            pass
        out["folder_one_by_one"] = stages.folder_one_by_one_row(engine, files)
        out["folder"] = stages.folder_row(engine, files)
    if float(cfg["live_s"]) > 0:
        out["live"] = stages.live_row(engine, float(cfg["live_s"]))
    out["peak_rss_tagging_mb"] = peak_rss_mb()  # the app's paths (long clips in one piece come next)
    if engine.codec is not None:  # after the RSS of the app's paths: the candidates hold their own copies
        from models.benchmark.backends import backend_rows
        from models.benchmark.live import synthetic_signal

        clip = synthetic_signal(engine.sample_rate, float(cfg["clip_s"]))
        out["backends"] = backend_rows(engine, clip, repeat=repeat, budget_s=budget)
    if cfg.get("onnx_engine", True):  # the torch-free engine of the same pack: the app's from launch 2,
        from models.config import worker_threads  # with the app worker's threads

        out["onnx_engine"] = stages.onnx_engine_rows(
            engine, Path(work["clip"]), [Path(p) for p in work.get("files") or []], float(cfg["live_s"]),
            threads=worker_threads(), repeat=repeat, budget_s=budget,
        )  # fmt: skip
        out["onnx_engine_threads"] = worker_threads()
    out["scaling"] = stages.scaling_rows(
        engine, list(cfg["lengths_s"]), list(cfg["batches"]), repeat=repeat, budget_s=budget
    )
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m models.benchmark.worker SPEC.json OUT.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    result = measure(spec)
    tmp = Path(args[1]).with_suffix(".part")
    tmp.write_text(json.dumps(result, indent=1), encoding="utf-8")
    tmp.replace(args[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
