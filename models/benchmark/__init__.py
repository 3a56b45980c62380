"""Benchmarks of the tagging pipelines (``encotag bench``) and the live soak probe (``tools/soak.py``).

- :mod:`~models.benchmark.timing`: timers (best / median of repeats), RSS, load average;
- :mod:`~models.benchmark.subjects`: packs to measure (incl. random-weight codec packs) and workloads;
- :mod:`~models.benchmark.stages`: per-stage, scaling, long-file, folder and live measurements;
- :mod:`~models.benchmark.live`: :class:`~models.benchmark.live.LiveProbe` (real-time synthetic stream);
- :mod:`~models.benchmark.runner` / :mod:`~models.benchmark.worker`: one process per subject (peak RSS);
- :mod:`~models.benchmark.report`: the table with ratios to the teacher, Markdown, the SVG plot.
"""
