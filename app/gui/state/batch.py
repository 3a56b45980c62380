"""The rows of the batch view (Qt-free): one per file, filled from the batch records
(:mod:`models.batch.work`) as they arrive."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

COLUMNS = ("Name", "Duration (s)", "Status", "Top tags", "Events", "Trusted")


@dataclass
class BatchRow:
    path: str
    status: str = "queued"  # queued, ok, warning, failed
    duration: float = -1.0  # -1: not known yet
    top: str = ""  # "Speech 0.91, Music 0.30 †, …" († an untrusted label)
    n_events: int = -1
    trusted: str = ""  # "3/5": trusted labels among the top tags
    error: str = ""

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def cell(self, col: int) -> str:
        """The text shown in column ``col`` (:data:`COLUMNS`)."""
        if col == 0:
            return self.name
        if col == 1:
            return "" if self.duration < 0 else f"{self.duration:.2f}"
        if col == 2:
            return self.status if not self.error else f"{self.status}: {self.error}"
        if col == 3:
            return self.top
        if col == 4:
            return "" if self.n_events < 0 else str(self.n_events)
        return self.trusted

    def sort_key(self, col: int) -> Any:
        """What column ``col`` sorts by (numbers as numbers)."""
        if col == 1:
            return self.duration
        if col == 4:
            return self.n_events
        return self.cell(col).lower()


class BatchRows:
    """The rows of one batch by path, in the order the files were given; ``update`` files a record."""

    def __init__(self, paths: list[str]) -> None:
        self.rows = [BatchRow(p) for p in paths]
        self._index = {p: i for i, p in enumerate(paths)}
        self.records: dict[str, dict[str, Any]] = {}
        self.done = 0
        self.audio_s = 0.0

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, path: object) -> bool:
        return path in self._index

    def sort(self, col: int, descending: bool = False) -> None:
        """Order the rows by column ``col`` (one key per row: cheap for any number of rows)."""
        self.rows.sort(key=lambda r: r.sort_key(col), reverse=descending)
        self._index = {r.path: i for i, r in enumerate(self.rows)}

    def update(self, rec: dict[str, Any]) -> int:
        """File ``rec`` into its row; returns the row index (a file not in the batch is appended)."""
        path = str(rec["file"])
        i = self._index.get(path)
        if i is None:
            i = self._index[path] = len(self.rows)
            self.rows.append(BatchRow(path))
        row = self.rows[i]
        if row.status == "queued":
            self.done += 1
        self.records[path] = rec
        row.status = str(rec.get("status", "failed"))
        row.error = str(rec.get("error") or "")
        row.duration = float(rec.get("duration") or 0.0)
        self.audio_s += row.duration
        labels = rec.get("top_labels") or []
        scores = rec.get("top_scores") or []
        trusted = rec.get("top_trusted") or []
        row.top = ", ".join(
            f"{lab} {s:.2f}{'' if t else ' †'}" for lab, s, t in zip(labels, scores, trusted, strict=False)
        )
        row.n_events = int(rec.get("n_events", len(rec.get("events") or ())))
        row.trusted = f"{sum(map(bool, trusted))}/{len(trusted)}" if trusted else ""
        return i
