"""Batch tagging and embedding of many files: one combined, resumable output (Qt-free).

- ``work``: what one file turns into (a summary row and event rows, or window embeddings).
- ``journal``: the append-only journal beside the output that makes a run resumable.
- ``tables``: the combined output (Parquet, CSV, JSON; npz/Parquet for embeddings) and reading it back.
- ``runner``: worker processes, bounded in flight, progress counts.
- ``ray_engine``: the same work on Ray Data (optional ``cluster`` extra).
"""
