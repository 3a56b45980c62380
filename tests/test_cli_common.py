"""app/commands/common.py: the helpers every CLI command shares (progress printer, output paths, types)."""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.commands.common import ProgressPrinter, output_paths, seconds, thread_count


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_piped_writes_one_line_per_ten_percent() -> None:
    out = io.StringIO()
    report = ProgressPrinter("codes x", stream=out).counter()
    for i in range(101):
        report(i, 100)
    lines = out.getvalue().splitlines()
    assert len(lines) == 11 and lines[0].startswith("codes x: [") and lines[-1].endswith("100/100")


def test_progress_not_piped_is_silent_off_a_terminal_and_redraws_on_one() -> None:
    out = io.StringIO()
    bar = ProgressPrinter("f.wav", piped=False, stream=out)
    bar(SimpleNamespace(done=1, total=20, message=""))
    assert out.getvalue() == ""
    tty = _Tty()
    bar = ProgressPrinter("f.wav", piped=False, min_total=8, stream=tty)
    bar(SimpleNamespace(done=1, total=5, message=""))  # short: no bar
    assert tty.getvalue() == ""
    bar(SimpleNamespace(done=1, total=20, message="x"))
    bar.close()
    assert tty.getvalue().startswith("\r\x1b[Kf.wav: [") and tty.getvalue().endswith("\r\x1b[K")


def test_output_paths_never_collide(tmp_path: Path) -> None:
    files = [Path("a/x.wav"), Path("b/x.wav"), Path("c/y.wav")]
    assert output_paths(files, None, ".csv") == [None, None, None]
    assert output_paths(files, tmp_path, ".csv") == [
        tmp_path / "x.csv",
        tmp_path / "x-2.csv",
        tmp_path / "y.csv",
    ]
    assert output_paths(files[:1], tmp_path / "out.csv", ".csv") == [tmp_path / "out.csv"]


@pytest.mark.parametrize(("parse", "text"), [(seconds, "31"), (seconds, "0"), (thread_count, "257")])
def test_argument_types_refuse_out_of_range(parse: Callable[[str], object], text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse(text)
