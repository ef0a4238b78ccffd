"""The command-line options the server benchmarks share."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def parser(doc: str | None, rounds: int, duration: float, freeze: bool = False) -> argparse.ArgumentParser:
    """--rounds, --duration, --no-isolate and, for side-by-side runs, --no-freeze."""
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=rounds, help=f"default {rounds}")
    p.add_argument(
        "--duration", type=float, default=duration, help=f"seconds of load per slice; default {duration:g}"
    )
    p.add_argument(
        "--no-isolate",
        dest="isolate",
        action="store_false",
        help="leave gunicorn and wrk at the priority of the machine's other processes",
    )
    if freeze:
        p.add_argument(
            "--no-freeze",
            dest="freeze",
            action="store_false",
            help="leave the idle servers running (no SIGSTOP)",
        )
    return p


def add_list(
    p: argparse.ArgumentParser, name: str, choices: Sequence[str], default: Sequence[str] = ()
) -> None:
    """An option whose value is a comma list of some of ``choices`` (default: ``default``, or all)."""

    def parse(text: str) -> list[str]:
        chosen = [c for c in text.split(",") if c]
        if not chosen or any(c not in choices for c in chosen):
            raise argparse.ArgumentTypeError(f"a comma list of {', '.join(choices)}")
        return chosen

    default = default or choices
    p.add_argument(
        name,
        type=parse,
        default=",".join(default),
        help=f"a comma list of {', '.join(choices)}; default {','.join(default)}",
    )
