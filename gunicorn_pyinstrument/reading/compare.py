"""Comparing two selections of reports: which functions got slower, which got faster.

Pure functions over pyinstrument Sessions' frame records, one pass over the samples. Times are
per report (the mean over each selection), so selections of different sizes compare fairly, for
example every request to one endpoint under release N against the same under release N+1.

- *self* time: time sampled with the function at the top of the stack (its own code);
- *total* time: time sampled with the function anywhere in the stack (counted once per sample,
  however deep it recurses).

Thread and worker root frames are left out: they hold everything and say nothing.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyinstrument.session import Session

Function = tuple[str, str, int]  # name (with its class when known), file, first line


def function_of(identifier: str) -> Function | None:
    """A pyinstrument frame identifier (``name\\0file\\0line`` then ``\\x01``-attributes) as a
    function; None for thread and worker roots."""
    head, _, attributes = identifier.partition("\x01")
    parts = head.split("\x00")
    if len(parts) != 3 or parts[1] == "<thread>":
        return None
    name, filename, line = parts
    for attribute in attributes.split("\x01") if attributes else ():
        if attribute.startswith("c"):
            name = f"{attribute[1:]}.{name}"
    try:
        first_line = int(line)
    except ValueError:
        first_line = 0
    return name, filename, first_line


@dataclass
class Profile:
    """Seconds of self and total time per function, summed over ``reports`` sessions."""

    reports: int = 0
    seconds: float = 0.0
    self_time: dict[Function, float] = field(default_factory=dict)
    total_time: dict[Function, float] = field(default_factory=dict)

    def add(self, session: Session) -> None:
        functions: dict[str, Function | None] = {}
        self_time = self.self_time
        total_time = self.total_time
        for stack, seconds in session.frame_records:
            seen: set[Function] = set()
            leaf: Function | None = None
            for identifier in stack:
                if identifier in functions:
                    function = functions[identifier]
                else:
                    function = functions[identifier] = function_of(identifier)
                if function is None:
                    continue
                leaf = function
                if function not in seen:
                    seen.add(function)
                    total_time[function] = total_time.get(function, 0.0) + seconds
            if leaf is not None:
                self_time[leaf] = self_time.get(leaf, 0.0) + seconds
        self.reports += 1
        self.seconds += session.duration


def profile(sessions: Iterable[Session]) -> Profile:
    result = Profile()
    for session in sessions:
        result.add(session)
    return result


@dataclass(frozen=True)
class Change:
    """One function, in seconds per report under A and under B."""

    function: Function
    self_a: float
    self_b: float
    total_a: float
    total_b: float

    @property
    def self_delta(self) -> float:
        return self.self_b - self.self_a

    @property
    def total_delta(self) -> float:
        return self.total_b - self.total_a

    @property
    def ratio(self) -> float:
        """B's self time over A's (inf for a function that only B has)."""
        if self.self_a == 0:
            return math.inf if self.self_b else 1.0
        return self.self_b / self.self_a

    def to_json(self) -> dict[str, Any]:
        name, filename, line = self.function
        return {
            "function": name,
            "file": filename,
            "line": line,
            "self_a": self.self_a,
            "self_b": self.self_b,
            "self_delta": self.self_delta,
            "total_a": self.total_a,
            "total_b": self.total_b,
            "total_delta": self.total_delta,
        }


@dataclass(frozen=True)
class Diff:
    a: Profile
    b: Profile
    changes: list[Change]  # largest change of self time first

    @property
    def slower(self) -> list[Change]:
        return [c for c in self.changes if c.self_delta > 0]

    @property
    def faster(self) -> list[Change]:
        return [c for c in self.changes if c.self_delta < 0]

    def to_json(self, limit: int | None = None) -> dict[str, Any]:
        return {
            "a": {"reports": self.a.reports, "mean_duration": _mean(self.a)},
            "b": {"reports": self.b.reports, "mean_duration": _mean(self.b)},
            "changes": [c.to_json() for c in self.changes[:limit]],
        }


def _mean(p: Profile) -> float:
    return p.seconds / p.reports if p.reports else 0.0


def diff(a: Profile, b: Profile) -> Diff:
    """Every function of either side, per report, sorted by how much its self time changed."""
    if not a.reports or not b.reports:
        raise ValueError("each side needs at least one report")
    changes = [
        Change(
            function=f,
            self_a=a.self_time.get(f, 0.0) / a.reports,
            self_b=b.self_time.get(f, 0.0) / b.reports,
            total_a=a.total_time.get(f, 0.0) / a.reports,
            total_b=b.total_time.get(f, 0.0) / b.reports,
        )
        for f in a.total_time.keys() | b.total_time.keys()
    ]
    changes.sort(key=lambda c: (-abs(c.self_delta), -abs(c.total_delta), c.function))
    return Diff(a, b, changes)


# --- output ---


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def _signed_ms(seconds: float) -> str:
    return f"{seconds * 1000:+.2f}"


def _percent(change: Change) -> str:
    ratio = change.ratio
    if math.isinf(ratio):
        return "new"
    if change.self_b == 0 and change.self_a:
        return "gone"
    return f"{(ratio - 1) * 100:+.0f}%"


def location(function: Function, width: int = 50) -> str:
    _, filename, line = function
    text = f"{filename}:{line}"
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def text_table(result: Diff, limit: int | None = 25, a_name: str = "A", b_name: str = "B") -> str:
    """The changes as a plain-text table, milliseconds per report."""
    lines = [
        f"{a_name}: {result.a.reports} report(s), mean {_ms(_mean(result.a))} ms; "
        f"{b_name}: {result.b.reports} report(s), mean {_ms(_mean(result.b))} ms "
        f"({_signed_ms(_mean(result.b) - _mean(result.a))} ms)",
        "Milliseconds per report; self = in the function's own code, total = including what it calls.",
        "",
    ]
    header = ("function", "self A", "self B", "Δ self", "change", "total A", "total B", "Δ total", "where")
    rows = [
        (
            c.function[0][:40],
            _ms(c.self_a),
            _ms(c.self_b),
            _signed_ms(c.self_delta),
            _percent(c),
            _ms(c.total_a),
            _ms(c.total_b),
            _signed_ms(c.total_delta),
            location(c.function),
        )
        for c in result.changes[:limit]
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [
            cell.ljust(widths[i]) if i in (0, 8) else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    if limit is not None and len(result.changes) > limit:
        lines.append(f"... {len(result.changes) - limit} more function(s)")
    return "\n".join(lines) + "\n"


#: The rules the comparison table needs (the web page embeds them in its own style sheet).
STYLE = """
body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: right; }
th { background: #f4f4f4; position: sticky; top: 0; }
td.name, td.where, th.name, th.where { text-align: left; }
td.where { color: #666; font-family: monospace; font-size: 12px; }
tr.slower td.delta { color: #b00020; font-weight: 600; }
tr.faster td.delta { color: #08753a; font-weight: 600; }
"""


def html_table(result: Diff, a_name: str = "A", b_name: str = "B", limit: int | None = 200) -> str:
    """The summary and the table of changes, as an HTML fragment (every value escaped), for
    :func:`html_page` and for pages that embed it."""
    esc = html.escape
    rows = []
    for c in result.changes[:limit]:
        kind = "slower" if c.self_delta > 0 else "faster" if c.self_delta < 0 else "same"
        rows.append(
            f'<tr class="{kind}"><td class="name">{esc(c.function[0])}</td>'
            f"<td>{_ms(c.self_a)}</td><td>{_ms(c.self_b)}</td>"
            f'<td class="delta">{_signed_ms(c.self_delta)}</td><td>{esc(_percent(c))}</td>'
            f"<td>{_ms(c.total_a)}</td><td>{_ms(c.total_b)}</td><td>{_signed_ms(c.total_delta)}</td>"
            f'<td class="where">{esc(location(c.function, 80))}</td></tr>'
        )
    summary = (
        f"<p><b>A</b> = {esc(a_name)}: {result.a.reports} report(s), mean {_ms(_mean(result.a))} ms. "
        f"<b>B</b> = {esc(b_name)}: {result.b.reports} report(s), mean {_ms(_mean(result.b))} ms "
        f"({_signed_ms(_mean(result.b) - _mean(result.a))} ms).</p>"
        "<p>Milliseconds per report; <i>self</i> = time in the function's own code, <i>total</i> = "
        "including what it calls. Sorted by the change in self time.</p>"
    )
    more = ""
    if limit is not None and len(result.changes) > limit:
        more = f"<p>… {len(result.changes) - limit} more function(s).</p>"
    return (
        f"{summary}"
        '<table id="diff"><thead><tr><th class="name">function</th><th>self A</th><th>self B</th>'
        "<th>Δ self</th><th>change</th><th>total A</th><th>total B</th><th>Δ total</th>"
        f'<th class="where">where</th></tr></thead><tbody>{"".join(rows)}</tbody></table>{more}'
    )


def html_page(result: Diff, title: str, a_name: str = "A", b_name: str = "B", limit: int | None = 200) -> str:
    """A self-contained HTML page of the changes (every value escaped)."""
    esc = html.escape
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>"
        f"{html_table(result, a_name, b_name, limit)}</body></html>"
    )
