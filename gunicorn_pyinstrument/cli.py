"""The command line: ``gunicorn-pyinstrument`` (or ``python -m gunicorn_pyinstrument``).

Reads the report directory through the catalog (``catalog/``): ``list``, ``top``, ``render``,
``merge``, ``diff``, ``prune`` and ``serve`` (the local web page, ``web/``). The directory is
``--dir``, else ``GUNICORN_PYINSTRUMENT_DIR``, else the plugin's default, so on a server the
command needs no option. Errors are one line on stderr; exit status 1 for an empty selection, 2
for bad usage or a directory that cannot be read. A report that cannot be read is skipped and
named, never the end of the command.

``--dir s3://BUCKET/PREFIX`` (the default when ``GUNICORN_PYINSTRUMENT_UPLOAD`` is set) reads the
reports a fleet uploaded there, through a local copy that downloads each record and file once
(``mirror.py``); ``upload`` sends a local directory's reports there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, NoReturn

from . import catalog as catalog_module
from . import inputs
from .catalog import (
    QUERY_KEYS,
    TOP_ORDERS,
    Catalog,
    CatalogError,
    Drops,
    Entry,
    Query,
    strip_suffix,
)
from .directory import FORMAT_SUFFIXES, METADATA_SUFFIX, report_name
from .inputs import is_s3_url
from .reading.display import PROG, iso
from .settings import PREFIX, SettingError, load_one
from .stores.s3 import StoreError

if TYPE_CHECKING:
    from pyinstrument.session import Session

OUTPUT_FORMATS = ("html", "speedscope", "text", "pstats", "session")
#: A progress bar is drawn (on a terminal) for work on more reports than this.
PROGRESS_THRESHOLD = 200
#: How often ``serve --dir s3://...`` looks for new reports in the bucket.
SERVE_SYNC_SECONDS = 30.0


class UsageError(Exception):
    """Bad input from the user: one line, exit status 2."""


class EmptySelection(Exception):
    """Nothing matched: one line, exit status 1."""


# --- parsing values ---


def _argument(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A parser of user input (``inputs.py``, a query's keys) as an argparse type: its ValueError
    becomes argparse's one-line error."""

    def wrapped(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            message = str(exc)
            if repr(text) not in message:
                message += f": {text!r}"
            raise argparse.ArgumentTypeError(message) from None

    wrapped.__name__ = parse.__name__
    return wrapped


#: A whole number, 0 or more: ``--limit``, ``--max-reports``, ``--port``.
parse_count = _argument(inputs.parse_count)
#: A size with an optional unit: ``--max-bytes``.
parse_size = _argument(inputs.parse_size)


def setting(attr: str) -> Any:
    """One plugin setting from the environment, parsed and checked as the server does."""
    return load_one(attr)


# --- selections on the command line ---

#: Options that select reports; the same in list, top, merge, diff and serve.
_HELP = {
    "path": ("REGEX", "paths this regular expression finds (re.search)"),
    "method": ("METHOD", "HTTP method"),
    "status": ("CODE", "status code, or a class like 5xx"),
    "min_duration": ("TIME", "at least this long (0.25, 250ms, 2s)"),
    "label": ("LABEL", "reports written with this GUNICORN_PYINSTRUMENT_LABEL"),
    "since": ("TIME", "started at or after (ISO time in UTC, or an age: 10m, 2h)"),
    "until": ("TIME", "started at or before (ISO time in UTC, or an age)"),
    "worker": ("WORKER", "written by this worker: pid, instance, PID-INSTANCE or host"),
    "kind": (
        "KIND",
        "request (one per request), worker (per-worker windows) or dropped (the drops a worker "
        "recorded at exit)",
    ),
    "endpoint": ("ENDPOINT", "as top names it, for example 'GET /users/{n}'"),
}


def add_selection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("selection (every option given must match)")
    for key, parse in QUERY_KEYS.items():
        metavar, text = _HELP[key]
        flag = "--" + key.replace("_", "-")
        group.add_argument(flag, dest=key, type=_argument(parse), metavar=metavar, help=text)


def query_from(args: argparse.Namespace, **overrides: Any) -> Query:
    values = {key: getattr(args, key, None) for key in QUERY_KEYS}
    values.update(overrides)
    return Query(**{k: v for k, v in values.items() if v is not None})


def parse_side(text: str, base: Query) -> tuple[Query, str]:
    try:
        return base.narrowed(text), text
    except ValueError as exc:
        raise UsageError(str(exc)) from None


# --- output helpers ---


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int], out: IO[str]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)]
        out.write("  ".join(cells).rstrip() + "\n")


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class Progress:
    """A one-line progress bar on stderr, drawn only on a terminal and for long work."""

    def __init__(self, total: int, what: str, enabled: bool | None = None, stream: IO[str] | None = None):
        self.stream = stream or sys.stderr
        self.total = total
        self.what = what
        if enabled is None:
            enabled = total > PROGRESS_THRESHOLD and self.stream.isatty()
        self.enabled = enabled
        self._last = -1.0

    def __call__(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < self.total and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        filled = int(width * done / max(self.total, 1))
        self.stream.write(f"\r{self.what} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}")
        if done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


# --- commands ---


def open_catalog(args: argparse.Namespace) -> Catalog:
    cat = Catalog(args.dir)
    for name, reason in cat.unreadable.items():
        warn(f"skipped {os.path.join(cat.directory, name + METADATA_SUFFIX)}: {reason}")
    return cat


def select(cat: Catalog, query: Query, **kwargs: Any) -> list[Entry]:
    entries = cat.entries(query, **kwargs)
    if not entries:
        count, _ = cat.totals()
        raise EmptySelection(f"no report matches the selection ({count} report(s) in {cat.directory})")
    return entries


def json_array(lines: list[str]) -> str:
    """A JSON array of JSON texts, one per line."""
    return "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"


def cmd_list(args: argparse.Namespace, out: IO[str]) -> int:
    with open_catalog(args) as cat:
        query = query_from(args)
        order = {"order": args.sort, "descending": not args.ascending, "limit": args.limit or None}
        if args.json:
            records = cat.json_records(query, **order)
            out.write(json_array(records))
            found = bool(records)
        else:
            entries = cat.entries(query, **order)
            rows = [
                (
                    iso(e.start),
                    e.method or "WORKER",
                    shorten(e.path or f"({'dropped' if e.kind == 'dropped' else 'window'})", 60),
                    "" if e.status is None else str(e.status),
                    f"{e.duration * 1000:.1f}",
                    e.label or "",
                    e.worker,
                    e.name,
                )
                for e in entries
            ]
            if rows:
                header = ("time (UTC)", "method", "path", "status", "ms", "label", "worker", "name")
                table(header, rows, {3, 4}, out)
            drops = cat.dropped(query)
            if drops:
                out.write(("\n" if rows else "") + f"dropped: {drops.summary()}\n")
            found = bool(rows)
        if not found:
            count, _ = cat.totals()
            raise EmptySelection(f"no report matches the selection ({count} report(s) in {cat.directory})")
    return 0


def cmd_top(args: argparse.Namespace, out: IO[str]) -> int:
    with open_catalog(args) as cat:
        stats = catalog_module.top_of(cat.endpoint_durations(query_from(args, kind="request")), args.sort)
        if args.limit:
            stats = stats[: args.limit]
        if args.json:
            json.dump([s.to_json() for s in stats], out, indent=1)
            out.write("\n")
        elif stats:
            rows = [
                (
                    shorten(s.endpoint, 70),
                    str(s.count),
                    f"{s.p50 * 1000:.1f}",
                    f"{s.p95 * 1000:.1f}",
                    f"{s.max * 1000:.1f}",
                    f"{s.total:.3f}",
                    "-" if s.sampler_share is None else f"{s.sampler_share * 100:.2f}",
                )
                for s in stats
            ]
            header = ("endpoint", "count", "p50 ms", "p95 ms", "max ms", "total s", "sampler %")
            table(header, rows, {1, 2, 3, 4, 5, 6}, out)
        drops = cat.dropped(query_from(args)) if not args.json else None
        if drops:
            drops_table(drops, out, after_table=bool(stats))
        if not stats:
            count, _ = cat.totals()
            raise EmptySelection(
                f"no request report matches the selection ({count} report(s) in {cat.directory})"
            )
    return 0


def drops_table(drops: Drops, out: IO[str], after_table: bool) -> None:
    """The reports the selected workers dropped over the selected time, per worker and in all."""
    if after_table:
        out.write("\n")
    out.write(f"dropped: {drops.summary()}\n")
    rows = [(w.worker, w.hostname, str(w.queue_full), str(w.spool_full)) for w in drops.workers]
    rows.append(("all", "", str(drops.queue_full), str(drops.spool_full)))
    table(("worker", "host", "queue full", "spool full"), rows, {2, 3}, out)


def write_output(data: bytes, path: str, out: IO[str]) -> None:
    if path == "-":
        out.flush()
        buffer = getattr(out, "buffer", None)
        if buffer is None:  # a text stream only (a StringIO): the bytes as text, pstats included
            out.write(data.decode("utf-8", "surrogateescape"))
        else:
            buffer.write(data)
            buffer.flush()
        return
    with open(path, "wb") as f:
        f.write(data)
    print(f"wrote {path}", file=sys.stderr)


def default_output(stem: str, fmt: str) -> str:
    return "-" if fmt == "text" else stem + FORMAT_SUFFIXES[fmt]


def cmd_render(args: argparse.Namespace, out: IO[str]) -> int:
    from .formats import load_session, render

    source = args.report
    name = strip_suffix(source)
    direct = os.path.isfile(source) and (
        source.endswith(FORMAT_SUFFIXES["session"]) or report_name(os.path.basename(source)) is None
    )
    here = os.path.dirname(os.path.abspath(source))
    if os.path.isfile(source) and not direct and os.path.isfile(os.path.join(here, name + METADATA_SUFFIX)):
        # One of a report's other files (its HTML, its metadata): the report, from that directory.
        args.dir = here
    if direct:
        with open(source, "rb") as f:
            try:
                session = load_session(f.read())
            except Exception as exc:
                raise UsageError(f"cannot read {source} as a pyinstrument session: {exc}") from None
        stem = name
    else:
        with open_catalog(args) as cat:
            entry = cat.get(name)
            if entry is None:
                raise EmptySelection(f"no report named {name!r} in {cat.directory}")
            try:
                session = cat.load_session(entry)
            except Exception as exc:
                raise UsageError(f"cannot read the session of {entry.name}: {exc}") from None
            stem = entry.name
    write_output(render(session, args.format), args.output or default_output(stem, args.format), out)
    return 0


def load_all(cat: Catalog, entries: list[Entry], what: str, progress: bool | None) -> Iterator[Session]:
    def skipped(entry: Entry, reason: str) -> None:
        warn(f"skipped {entry.name}: {reason}")

    fetch_many = getattr(cat.source, "fetch_many", None)
    if fetch_many is not None:  # a copy of object storage: download the sessions several at once
        fetch_many(e.files["session"] for e in entries if "session" in e.files)
    bar = Progress(len(entries), what, enabled=progress)
    return cat.sessions(entries, skipped, bar)


def fold_stacks(sessions: Iterable[Session], stacks: dict[tuple[str, ...], float]) -> Iterator[Session]:
    """Each session's seconds added to ``stacks`` per distinct call stack; the session is passed on
    without its samples (its other fields are what merge_sessions needs)."""
    for session in sessions:
        for stack, seconds in session.frame_records:
            key = tuple(stack)
            stacks[key] = stacks.get(key, 0.0) + seconds
        session.frame_records = []
        yield session


def cmd_merge(args: argparse.Namespace, out: IO[str]) -> int:
    from .aggregate import merge_sessions
    from .formats import render

    with open_catalog(args) as cat:
        entries = select(cat, query_from(args))
        loaded = load_all(cat, entries, "loading", args.progress)
        # The call tree adds up identical stacks anyway: add them up as each session is loaded, so
        # only the distinct stacks are kept, written and rendered (1,000 request sessions: 125,000
        # samples, a few hundred distinct stacks). --keep-samples keeps every sample in order, for
        # the timeline view, at the cost of a file as large as all the inputs.
        stacks: dict[tuple[str, ...], float] | None = None if args.keep_samples else {}
        sessions = list(loaded if stacks is None else fold_stacks(loaded, stacks))
        if not sessions:
            raise EmptySelection("none of the selected reports could be read")
        description = args.title or f"{len(sessions)} reports merged"
        merged = merge_sessions(sessions, description)
        if stacks is not None:
            merged.frame_records = [(list(stack), seconds) for stack, seconds in stacks.items()]
    stem = "merged_" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    write_output(render(merged, args.format), args.output or default_output(stem, args.format), out)
    print(f"merged {len(sessions)} report(s), {merged.sample_count} samples", file=sys.stderr)
    return 0


def cmd_diff(args: argparse.Namespace, out: IO[str]) -> int:
    from .reading.compare import diff, html_page, profile, text_table

    base = query_from(args)
    side_a, a_name = parse_side(args.a, base)
    side_b, b_name = parse_side(args.b, base)
    with open_catalog(args) as cat:
        profiles = []
        for query, name in ((side_a, a_name), (side_b, b_name)):
            entries = cat.entries(query)
            if not entries:
                raise EmptySelection(f"no report matches {name!r} in {cat.directory}")
            profiles.append(profile(load_all(cat, entries, f"loading {name}", args.progress)))
            if not profiles[-1].reports:
                raise EmptySelection(f"none of the reports of {name!r} could be read")
    result = diff(profiles[0], profiles[1])
    limit = args.limit or None
    if args.json:
        json.dump(result.to_json(limit), out, indent=1)
        out.write("\n")
    else:
        out.write(text_table(result, limit, a_name, b_name))
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(html_page(result, f"{a_name} → {b_name}", a_name, b_name))
        print(f"wrote {args.html}", file=sys.stderr)
    return 0


def cmd_prune(args: argparse.Namespace, out: IO[str]) -> int:
    max_reports = args.max_reports if args.max_reports is not None else setting("max_reports")
    max_bytes = args.max_bytes if args.max_bytes is not None else setting("max_bytes")
    if max_reports is None and max_bytes is None:
        raise UsageError(
            f"no retention limit: pass --max-reports or --max-bytes, or set {PREFIX}_MAX_REPORTS "
            f"or {PREFIX}_MAX_BYTES"
        )
    with open_catalog(args) as cat:
        removed, orphans = cat.prune(max_reports, max_bytes, dry_run=args.dry_run)
        count, size = cat.totals()
    verb = "would remove" if args.dry_run else "removed"
    freed = sum(e.bytes for e in removed)
    out.write(f"{verb} {len(removed)} report(s) ({freed} bytes) and {len(orphans)} orphaned file(s)\n")
    if not args.dry_run:
        out.write(f"{count} report(s), {size} bytes left in {cat.directory}\n")
    else:
        for entry in removed:
            out.write(f"  {entry.name}\n")
    return 0


def cmd_serve(args: argparse.Namespace, out: IO[str]) -> int:
    from .web import serve

    mirror = getattr(args, "mirror", None)
    if mirror is not None:
        # The page reads the local copy; keep it up with the fleet while it is open.
        def keep_syncing() -> None:
            while True:
                time.sleep(SERVE_SYNC_SECONDS)
                try:
                    mirror.sync(args.since, args.until)
                except Exception as exc:
                    warn(f"{exc}; the page shows the reports copied so far")

        threading.Thread(target=keep_syncing, name="gunicorn-pyinstrument-sync", daemon=True).start()
    serve(args.dir, args.host, args.port, query_from(args), out)
    return 0


def cmd_upload(args: argparse.Namespace, out: IO[str]) -> int:
    from .directory import JOB_SUFFIX, SPOOL_DIR
    from .helper.upload import Uploader
    from .inputs import parse_s3_url
    from .stores.s3 import S3Store

    target = args.to or setting("upload")
    if target is None:
        raise UsageError(f"no destination: pass --to s3://BUCKET/PREFIX or set {PREFIX}_UPLOAD")
    try:
        location = parse_s3_url(str(target))
    except ValueError as exc:
        raise UsageError(f"--to {str(target)!r}: {exc}") from None
    if not os.path.isdir(args.dir):
        raise CatalogError(f"report directory {os.path.abspath(args.dir)} does not exist")
    uploader = Uploader(
        args.dir, S3Store(location, setting("s3_endpoint_url")), location, keep=args.keep, log=warn
    )
    try:
        uploader.upload_all()
    except StoreError as exc:
        raise StoreError(f"{exc} ({uploader.uploaded} report(s) uploaded before)") from None
    out.write(f"uploaded {uploader.uploaded} report(s) from {os.path.abspath(args.dir)} to {location}\n")
    with contextlib.suppress(OSError):
        jobs = [n for n in os.listdir(os.path.join(args.dir, SPOOL_DIR)) if n.endswith(JOB_SUFFIX)]
        if jobs:
            warn(
                f"{len(jobs)} report(s) are still to be rendered, so not uploaded: "
                f"python -m gunicorn_pyinstrument.helper --once {args.dir}, then upload again"
            )
    return 0


def open_remote(args: argparse.Namespace) -> None:
    """``--dir s3://BUCKET/PREFIX``: bring the local copy of the bucket's records up to date and
    point ``args.dir`` at it; its catalog fetches the other files when a command opens them."""
    from .inputs import parse_s3_url
    from .reading.mirror import Mirror, default_cache_dir
    from .stores.s3 import S3Store

    url = args.dir
    if args.command == "prune":
        raise UsageError(
            f"prune does not remove reports from {url}: expire them with a lifecycle rule on the bucket "
            "(see docs/fleet.md)"
        )
    if args.command == "upload":
        raise UsageError("upload sends a local directory: --dir DIR --to s3://BUCKET/PREFIX")
    try:
        location = parse_s3_url(url)
    except ValueError as exc:
        raise UsageError(f"--dir {url!r}: {exc}") from None
    endpoint = setting("s3_endpoint_url")
    cache = args.cache or setting("cache_dir") or default_cache_dir(location, endpoint)
    try:
        mirror = Mirror(location, cache, S3Store(location, endpoint)).attach()
    except (OSError, ValueError) as exc:
        if isinstance(exc, StoreError):
            raise
        raise UsageError(f"cannot use the cache directory {cache}: {exc}") from None
    try:
        result = mirror.sync(getattr(args, "since", None), getattr(args, "until", None))
    except StoreError as exc:
        if not any(mirror.local.names(METADATA_SUFFIX)):
            raise
        warn(f"{exc}; using the reports copied before, in {mirror.directory}")
    else:
        print(
            f"{location}: {result.reports} report(s), {result.downloaded} downloaded now "
            f"(local copy: {mirror.directory})",
            file=sys.stderr,
        )
    args.dir = mirror.directory
    args.mirror = mirror


# --- the parser ---


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line, as every other error here (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Find, aggregate, compare and browse the reports gunicorn-pyinstrument wrote.",
    )
    parser.add_argument(
        "--dir",
        default=None,
        help=f"the report directory, or s3://BUCKET/PREFIX (default: ${PREFIX}_UPLOAD, else ${PREFIX}_DIR, "
        "else ./pyinstrument-reports)",
    )
    parser.add_argument(
        "--cache",
        default=None,
        metavar="DIR",
        help=f"with --dir s3://...: the local copy (default: ${PREFIX}_CACHE_DIR, else "
        "~/.cache/gunicorn-pyinstrument/s3/BUCKET/...)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, text: str, run: Callable[[argparse.Namespace, IO[str]], int]
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sub.add_argument("--cache", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sub.set_defaults(run=run)
        return sub

    sub = command("list", "list reports, newest first", cmd_list)
    add_selection(sub)
    sub.add_argument(
        "--sort", choices=sorted(catalog_module.ORDERS), default="time", help="sort by (default time)"
    )
    sub.add_argument("--ascending", action="store_true", help="smallest (or oldest) first")
    sub.add_argument("--limit", type=parse_count, default=50, help="at most N rows (default 50; 0: all)")
    sub.add_argument("--json", action="store_true", help="JSON records instead of a table")

    sub = command("top", "time per endpoint: count, p50, p95, max, total, sampler share", cmd_top)
    add_selection(sub)
    sub.add_argument("--sort", choices=TOP_ORDERS, default="total", help="sort by (default total)")
    sub.add_argument("--limit", type=parse_count, default=0, help="at most N endpoints (default all)")
    sub.add_argument("--json", action="store_true", help="JSON records instead of a table")

    sub = command("render", "render a report in another format", cmd_render)
    sub.add_argument("report", help="a report name (or one of its files), or a .pyisession file")
    sub.add_argument("-f", "--format", choices=OUTPUT_FORMATS, default="html", help="default html")
    sub.add_argument(
        "-o", "--output", help="output file, - for stdout (default NAME.SUFFIX here; text: stdout)"
    )

    sub = command("merge", "merge the selected reports into one", cmd_merge)
    add_selection(sub)
    sub.add_argument("-f", "--format", choices=OUTPUT_FORMATS, default="html", help="default html")
    sub.add_argument("-o", "--output", help="output file, - for stdout (default merged_TIME.SUFFIX here)")
    sub.add_argument("--title", help="the merged report's description")
    sub.add_argument(
        "--keep-samples",
        action="store_true",
        help="keep every sample in time order (for the timeline view) instead of one per distinct stack",
    )
    _progress_options(sub)

    sub = command("diff", "compare two selections function by function", cmd_diff)
    sub.add_argument("a", help="side A: KEY=VALUE[,KEY=VALUE...] (label=v1) or a report name")
    sub.add_argument("b", help="side B, the same way (label=v2)")
    add_selection(sub)
    sub.add_argument("--limit", type=parse_count, default=25, help="at most N functions (default 25; 0: all)")
    sub.add_argument("--json", action="store_true", help="JSON instead of a table")
    sub.add_argument("--html", metavar="FILE", help="also write the comparison as an HTML page")
    _progress_options(sub)

    sub = command("prune", "apply retention now (oldest reports first)", cmd_prune)
    sub.add_argument("--max-reports", type=parse_count, default=None, help=f"default ${PREFIX}_MAX_REPORTS")
    sub.add_argument("--max-bytes", type=parse_size, default=None, help=f"default ${PREFIX}_MAX_BYTES")
    sub.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")

    sub = command("serve", "browse the reports in a local web page", cmd_serve)
    add_selection(sub)
    sub.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    sub.add_argument("--port", type=parse_count, default=8000, help="port (default 8000; 0: any free port)")

    sub = command("upload", "upload a local directory's complete reports to object storage", cmd_upload)
    sub.add_argument("--to", metavar="URL", help=f"s3://BUCKET/PREFIX (default ${PREFIX}_UPLOAD)")
    sub.add_argument("--keep", action="store_true", help="keep the local copies (default: remove them)")
    return parser


def _progress_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--progress", action="store_true", default=None, help="always draw the progress bar")
    sub.add_argument("--no-progress", dest="progress", action="store_false", help="never draw it")


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.dir is None:
            upload = setting("upload") if args.command != "upload" else None
            args.dir = str(upload) if upload is not None else setting("dir")
        if is_s3_url(args.dir):
            open_remote(args)
        return int(args.run(args, out))
    except EmptySelection as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except (UsageError, CatalogError, SettingError, StoreError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
