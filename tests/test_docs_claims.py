"""What README.md and docs/GUI.md claim, where it can be checked: every ``encotag …`` command and option they
name exists in the program's argument parser, and the shipped pack's figures (name, size, licence, label
count, the trusted labels) match its manifest."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from app.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
DOCS = (REPO / "README.md", REPO / "docs" / "GUI.md")
MANIFEST = REPO / "resources" / "packs" / "default" / "manifest.json"


def _command_lines(text: str) -> list[str]:
    """Every ``encotag …`` command written in a code span or a code block line."""
    spans = re.findall(r"`([^`\n]+)`", text)
    blocks = [line for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S) for line in block.splitlines()]
    out = []
    for chunk in spans + blocks:
        for m in re.finditer(r"(?:^|[\s(])encotag((?:\s+[^\s#]+)*)", chunk.split("#")[0]):
            out.append("encotag" + m.group(1))
    return out


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _takes_positionals(parser: argparse.ArgumentParser) -> bool:
    return any(
        not a.option_strings and not isinstance(a, argparse._SubParsersAction) for a in parser._actions
    )


def _check(line: str, root: argparse.ArgumentParser) -> list[str]:
    """Problems with one documented command line (empty when the parser knows it)."""
    words = line.split()[1:]
    cut = next((i for i, w in enumerate(words) if w in ("&&", "||", "|", ";", ">", "2>&1")), len(words))
    tokens = [t.strip("[]()|,.;:") for t in words[:cut]]  # up to a shell operator
    parser, chain, problems = root, ["encotag"], []
    values: int | str = 0  # values still owed to the last option ("+": one or more)
    for tok in tokens:
        if not tok or tok in ("…", "..."):
            continue
        subs = _subparsers(parser)
        if tok.startswith("--"):
            action = parser._option_string_actions.get(tok.split("=")[0])
            if action is None:
                problems.append(f"{line!r}: {' '.join(chain)} has no option {tok.split('=')[0]}")
                values = 1  # its value, if any, is not an argument of its own
            else:
                values = (
                    action.nargs
                    if action.nargs in ("+", "*")
                    else (1 if action.nargs is None else action.nargs)
                )
                values = 0 if "=" in tok and values == 1 else values
            continue
        if values == 1 or values == "+":
            values = "*" if values == "+" else 0
            continue
        if values == "*":
            continue
        if subs and re.fullmatch(r"[a-z][a-z_-]*", tok):
            if tok not in subs:
                problems.append(f"{line!r}: {' '.join(chain)} has no command {tok!r}")
                break
            parser, chain = subs[tok], [*chain, tok]
        elif not subs and not _takes_positionals(parser):
            problems.append(f"{line!r}: {' '.join(chain)} takes no argument {tok!r}")
    return problems


def test_documented_commands_and_options_exist() -> None:
    root = build_parser()
    lines = [line for doc in DOCS for line in _command_lines(doc.read_text(encoding="utf-8"))]
    assert len(lines) >= 15  # the README's command table and the scripting examples are seen
    problems = [p for line in lines for p in _check(line, root)]
    assert problems == []


def test_the_check_sees_a_wrong_option() -> None:
    root = build_parser()
    assert _check("encotag info [--pack DIR]", root) == []
    assert _check("encotag info [PACK]", root) == [
        "'encotag info [PACK]': encotag info takes no argument 'PACK'"
    ]
    assert _check("encotag info --model X", root) == [
        "'encotag info --model X': encotag info has no option --model"
    ]
    assert _check("encotag frobnicate", root) == ["'encotag frobnicate': encotag has no command 'frobnicate'"]
    assert _check("encotag pack teacher --out DIR", root) == []


def test_readme_figures_match_the_shipped_manifest() -> None:
    if not MANIFEST.is_file():
        pytest.skip("no shipped pack in resources/packs/default (the figures describe it)")
    m = json.loads(MANIFEST.read_text(encoding="utf-8"))
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    flat = " ".join(readme.split())
    trusted = [name for name, ok in zip(m["labels"], m["trusted"], strict=True) if ok]
    # labels may hold parentheses ("Keyboard (musical)"): the list ends where the sentence names the manifest
    claim = re.search(r"trustworthy on (\d+) labels \((.*?): the manifest's `trusted` list", flat)
    assert claim is not None, "the README names the trusted labels"
    assert int(claim.group(1)) == len(trusted)
    listed = [s.strip() for s in claim.group(2).split(";")]
    assert listed == trusted
    other = re.search(r"marks the other (\d+) with †", flat)
    assert other is not None and int(other.group(1)) == len(m["labels"]) - len(trusted)
    assert f"{len(m['labels'])} **AudioSet**" in flat
    head = re.search(r"\*\*The shipped pack\*\* \(`([^`]+)`, (\d+) MB\)", flat)
    assert head is not None and head.group(1) == m["name"]
    size = sum(p.stat().st_size for p in MANIFEST.parent.iterdir() if p.is_file())
    assert abs(int(head.group(2)) - size / 1e6) < 1.0
    licence = re.search(r"\*\*Licence: ([^*]+)\*\*", flat)
    assert licence is not None and licence.group(1).replace(" ", "-") == m["licence"]
    gui = " ".join((REPO / "docs" / "GUI.md").read_text(encoding="utf-8").split())
    assert f"all {len(m['labels'])} labels" in gui
