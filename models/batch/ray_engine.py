"""``--engine ray``: the batch on Ray Data (optional ``cluster`` extra: ``pip install 'encotag[cluster]'``).

The files not yet in the journal become a Ray dataset of paths; ``map_batches`` runs them through an
actor pool (``concurrency=workers``, one CPU each) in which every actor loads **one** engine
(:class:`models.batch.runner.Work`) when it starts and keeps it, decoding and tagging (or embedding) each
file of its batches; the records come back to this process as JSON (embedding arrays base64, as in the
journal) and are journalled as they arrive, exactly as in a local run, so the output files are the same
(:mod:`models.batch.tables`) and an interrupted run resumes the same way.

Without ``RAY_ADDRESS`` a local Ray is started on this machine with ``workers`` CPUs; with it,
``ray.init`` joins that cluster (the pack folder and the audio must be readable at the same paths on every
node; docs/CLUSTER.md). Decoding runs inside the actors (it is not a separate stage of CPU tasks).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from models.batch.journal import Journal, _decode, _encode
from models.batch.runner import BatchCounts, BatchSpec, Work, pending

log = logging.getLogger(__name__)

FILES_PER_BATCH = 8


class RayUnavailableError(RuntimeError):
    """Ray is not installed (or cannot start): one line saying what to do."""


class _Actor:
    """One engine per actor, loaded once; ``__call__`` turns a batch of paths into records (JSON)."""

    def __init__(self, spec: BatchSpec) -> None:
        import torch

        torch.set_num_threads(max(1, spec.threads))
        self.work = Work(spec)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        return {"record": [json.dumps(_encode(self.work(Path(str(p))))) for p in batch["path"]]}


def run_ray(
    spec: BatchSpec,
    files: Sequence[Path],
    journal: Journal,
    *,
    workers: int = 2,
    on_record: Callable[[dict[str, Any], BatchCounts], None] | None = None,
) -> BatchCounts:
    """Like :func:`models.batch.runner.run_batch`, on Ray Data (module docstring)."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise RayUnavailableError("--engine ray needs Ray: pip install 'encotag[cluster]'") from None
    counts = BatchCounts(total=len(files))
    todo = pending(files, journal, counts)
    if not todo:
        return counts
    address = os.environ.get("RAY_ADDRESS") or None
    started = False
    if not ray.is_initialized():
        try:
            kw: dict[str, Any] = {} if address else {"num_cpus": workers, "include_dashboard": False}
            ray.init(address=address, log_to_driver=False, **kw)
            started = True
        except Exception as exc:  # noqa: BLE001 - any failure to start or join Ray is one line for the user
            raise RayUnavailableError(f"cannot start or join Ray ({type(exc).__name__}: {exc})") from None
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        paths = [os.path.abspath(p) for p in todo]
        blocks = max(1, min(len(paths), 4 * workers))
        source = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks)
        ds = source.map_batches(
            _Actor,
            fn_constructor_args=(spec,),
            batch_size=FILES_PER_BATCH,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
            batch_format="numpy",
        )
        given = {os.path.abspath(p): str(p) for p in todo}
        for row in ds.iter_rows():
            rec = _decode(json.loads(row["record"]))
            rec["file"] = given.get(rec["key"], rec["file"])  # the path as the user gave it
            journal.add(rec)
            counts.count(rec)
            if on_record is not None:
                on_record(rec, counts)
    finally:
        if started:
            ray.shutdown()
    return counts
