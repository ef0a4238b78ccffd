"""Every setting, declared once: its variable, parser, default and doc.

The same declarations feed parsing, start-up validation and ``docs/configuration.md``
(``python -m gunicorn_pyinstrument.settings`` prints it; a test checks the file is current).
Settings are read once, in the master, when the config module is imported, and the workers
inherit the parsed values through the fork.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from .directory import FORMAT_SUFFIXES
from .inputs import S3Location, parse_count, parse_number, parse_regex, parse_s3_url, parse_size, parse_span

PREFIX = "GUNICORN_PYINSTRUMENT"
#: The sampler engine's interval when GUNICORN_PYINSTRUMENT_INTERVAL is not set (100 Hz).
SAMPLER_INTERVAL = 0.01

#: Formats a report can be written in, with the file suffix of each.

TOKEN_HEADER = "X-Pyinstrument-Token"
_MIN_TOKEN_LENGTH = 16


class SettingError(ValueError):
    """A variable holds a value that is not accepted; the message is one line."""

    def __init__(self, message: str) -> None:
        # Whatever the value or the parser said, the message stays on one printable line.
        super().__init__("".join(c if c.isprintable() else ascii(c)[1:-1] for c in message))


@dataclasses.dataclass(frozen=True)
class Declaration:
    env: str
    parse: Callable[[str], Any]
    default: str | None  # the raw default; None means "unset"
    accepted: str
    doc: str
    secret: bool = False  # never echo the value (in errors or anywhere else)


def _declare(
    suffix: str,
    parse: Callable[[str], Any],
    *,
    default: str | None,
    accepted: str,
    doc: str,
    secret: bool = False,
) -> Any:
    env = f"{PREFIX}_{suffix}" if suffix else PREFIX
    decl = Declaration(env, parse, default, accepted, doc, secret)
    return dataclasses.field(metadata={"declaration": decl})


# --- parsers: each takes the raw string and raises ValueError with a short reason; numbers, counts,
# durations, sizes and regexes are read by inputs.py, as everywhere else users type them ---

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("not a switch word")


def parse_interval(raw: str) -> float:
    value = parse_number(raw)
    if not 0 < value <= 1:
        raise ValueError("out of range")
    return value


def parse_overhead(raw: str) -> float | None:
    """``1%`` (or ``1``) as 0.01; ``off``: no budget."""
    text = raw.strip().lower()
    if text == "off":
        return None
    value = parse_number(text.removesuffix("%"))
    if not 0 < value <= 100:
        raise ValueError("out of range")
    return value / 100


def parse_rate(raw: str) -> float:
    value = parse_number(raw)
    if not 0 <= value <= 1:
        raise ValueError("out of range")
    return value


def parse_duration(raw: str) -> float:
    value = parse_number(raw)
    if value < 0:
        raise ValueError("negative")
    return value


def parse_formats(raw: str) -> tuple[str, ...]:
    words = [w.strip().lower() for w in raw.split(",")]
    if not any(words):
        raise ValueError("empty list")
    unknown = [w for w in words if w not in FORMAT_SUFFIXES]
    if unknown:
        raise ValueError(f"unknown format {unknown[0]!r}")
    # Keep the user's order, drop repeats.
    return tuple(dict.fromkeys(words))


#: ``scheme://`` at the start of a value: a URL, never a path.
_URL = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.-]*://")


def parse_directory(raw: str) -> str:
    if not raw.strip():
        raise ValueError("empty path")
    if "\x00" in raw:
        raise ValueError("NUL byte in path")
    if _URL.match(raw):
        # As a path, s3://bucket/prefix would be a local directory named "s3:", filling the disk
        # that the user meant to spare.
        raise ValueError(
            f"a URL, not a directory: set {PREFIX}_UPLOAD=s3://BUCKET/PREFIX to upload reports; "
            "this variable then names the local spool where they wait"
        )
    # Absolute now, so a worker that changes directory still writes to the same place.
    return os.path.abspath(os.path.expanduser(raw))


def parse_optional_regex(raw: str) -> re.Pattern[str] | None:
    return parse_regex(raw, quote=False) if raw else None


def parse_token(raw: str) -> str | None:
    if not raw:
        return None
    if len(raw) < _MIN_TOKEN_LENGTH:
        raise ValueError("too short")
    if len(raw) > 256:
        raise ValueError("too long")
    if any(not (0x21 <= ord(c) <= 0x7E) for c in raw):
        raise ValueError("not printable ASCII without spaces")
    return raw


def parse_label(raw: str) -> str | None:
    if not raw:
        return None
    if len(raw) > 200:
        raise ValueError("longer than 200 characters")
    if not raw.isprintable():
        raise ValueError("contains control characters")
    return raw


def parse_file_mode(raw: str) -> int:
    text = raw.strip().lower().removeprefix("0o")
    if not re.fullmatch(r"[0-7]{3,4}", text):
        raise ValueError("not an octal mode")
    mode = int(text, 8)
    if mode & ~0o666:
        raise ValueError("execute or special bits set")
    if mode & 0o600 != 0o600:
        raise ValueError("owner must be able to read and write")
    return mode


def parse_queue_size(raw: str) -> int:
    return parse_count(raw, minimum=1, maximum=100_000)


MODES = ("request", "worker")


def parse_mode(raw: str) -> str:
    word = raw.strip().lower()
    if word not in MODES:
        raise ValueError("unknown mode")
    return word


ENGINES = ("pyinstrument", "sampler")


def parse_engine(raw: str) -> str:
    word = raw.strip().lower()
    if word not in ENGINES:
        raise ValueError("unknown engine")
    return word


def parse_flush_interval(raw: str) -> float:
    value = parse_number(raw)
    if not 1 <= value <= 86_400:
        raise ValueError("out of range")
    return value


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Profile for ``duration`` seconds at the start of every ``period``, aligned to the epoch so
    that every worker and every host profile the same windows."""

    duration: float
    period: float

    def active(self, now: float) -> bool:
        return now % self.period < self.duration

    def __str__(self) -> str:
        return f"{self.duration:g}s/{self.period:g}s"


def parse_schedule(raw: str) -> Schedule | None:
    if not raw:
        return None
    parts = raw.split("/")
    if len(parts) != 2:
        raise ValueError("not DURATION/PERIOD")
    duration, period = parse_span(parts[0]), parse_span(parts[1])
    if duration > period:
        raise ValueError("duration longer than period")
    return Schedule(duration, period)


def parse_control_file(raw: str) -> str | None:
    if not raw:
        return None
    if "\x00" in raw:
        raise ValueError("NUL byte in path")
    return os.path.abspath(os.path.expanduser(raw))


def parse_base_config(raw: str) -> str | None:
    if not raw:
        return None
    if raw.startswith("python:"):
        module = raw.removeprefix("python:")
        if not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", module):
            raise ValueError("not a module name")
        return raw
    path = os.path.abspath(os.path.expanduser(raw.removeprefix("file:")))
    if not os.path.isfile(path):
        raise ValueError("no such file")
    return path


def parse_header_names(raw: str) -> tuple[str, ...]:
    if not raw:
        return ()
    names = [n.strip() for n in raw.split(",")]
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name):
            raise ValueError(f"not a header name: {name!r}")
        if name.lower() == TOKEN_HEADER.lower():
            raise ValueError(f"{TOKEN_HEADER} is the trigger secret and is never recorded")
    return tuple(dict.fromkeys(n.lower() for n in names))


def parse_max_reports(raw: str) -> int | None:
    return parse_count(raw, minimum=1) if raw else None


def parse_max_bytes(raw: str) -> int | None:
    return parse_size(raw) if raw else None


def parse_upload(raw: str) -> S3Location | None:
    return parse_s3_url(raw.strip()) if raw else None


def parse_endpoint_url(raw: str) -> str | None:
    if not raw:
        return None
    url = raw.strip()
    if not url.isprintable() or any(c.isspace() for c in url):
        raise ValueError("not a URL")
    parts = urllib.parse.urlsplit(url)  # a ValueError for a bad port or IPv6 address
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http:// or https:// URL")
    parts.port  # noqa: B018 -- raises ValueError for a port out of range
    return url


@dataclasses.dataclass(frozen=True)
class Settings:
    """The parsed settings. Build it with :func:`load`."""

    enabled: bool = _declare(
        "",
        parse_bool,
        default="off",
        accepted="1, true, yes, on, 0, false, no or off",
        doc="The switch. When off, the config module installs no hook at all: no file is created and "
        "requests cost nothing.",
    )
    dir: str = _declare(
        "DIR",
        parse_directory,
        default="./pyinstrument-reports",
        accepted="a directory path, not a URL (created if missing, with mode 0700)",
        doc="Where reports are written. A relative path is taken from the directory gunicorn starts in. "
        "Checked (created and tested for writing) at start-up when profiling is on. With "
        "`GUNICORN_PYINSTRUMENT_UPLOAD`, the local spool where reports wait until they are uploaded. "
        "A URL (`s3://BUCKET/PREFIX`, or any `scheme://`) stops gunicorn at start-up with one line "
        "pointing to `GUNICORN_PYINSTRUMENT_UPLOAD`, which is where a bucket goes; it is never taken "
        "as a path, so no local directory named after the URL is created.",
    )
    formats: tuple[str, ...] = _declare(
        "FORMATS",
        parse_formats,
        default="session,html",
        accepted="a comma list of " + ", ".join(FORMAT_SUFFIXES),
        doc="Formats written for each report. Workers save only the compact session; every other format "
        "is rendered by a separate low-priority process started by the master, so rendering never costs "
        "a request. `session` is pyinstrument's `.pyisession`, which the CLI merges and compares.",
    )
    interval: float = _declare(
        "INTERVAL",
        parse_interval,
        default="0.001",
        accepted="seconds, greater than 0 and at most 1",
        doc="Sampling interval. With the pyinstrument engine, larger values make smaller reports and the "
        "cost of its hook on each Python call stays the same. With the sampler engine the cost grows "
        f"with the rate, so when this variable is not set the sampler uses {SAMPLER_INTERVAL:g} "
        f"({1 / SAMPLER_INTERVAL:g} Hz) instead of the default. For the sampler it is the fastest: "
        "`GUNICORN_PYINSTRUMENT_MAX_OVERHEAD` slows it down while samples are dear.",
    )
    sample_rate: float = _declare(
        "SAMPLE_RATE",
        parse_rate,
        default="1",
        accepted="a number from 0 to 1",
        doc="Fraction of eligible requests that are profiled. Decided before any profiler starts, so a "
        "request that is not chosen pays nothing.",
    )
    min_duration: float = _declare(
        "MIN_DURATION",
        parse_duration,
        default="0",
        accepted="seconds, 0 or more",
        doc="Keep a report only when the request took at least this long. Requests triggered with the "
        "token are always kept.",
    )
    include: re.Pattern[str] | None = _declare(
        "INCLUDE",
        parse_optional_regex,
        default=None,
        accepted="a Python regular expression",
        doc="Only paths this expression finds (`re.search`, on the percent-decoded path without the query "
        "string) are eligible. Unset: every path.",
    )
    exclude: re.Pattern[str] | None = _declare(
        "EXCLUDE",
        parse_optional_regex,
        default=None,
        accepted="a Python regular expression",
        doc="Paths this expression finds are never profiled (except with the token). Unset: none.",
    )
    token: str | None = _declare(
        "TOKEN",
        parse_token,
        default=None,
        accepted=f"at least {_MIN_TOKEN_LENGTH} printable ASCII characters without spaces",
        doc=f"A secret. A request carrying the header `{TOKEN_HEADER}: <token>` is always profiled, "
        "whatever the rate and filters (compared in constant time). A missing or wrong token changes "
        "nothing for that request. The token is never logged or stored.",
        secret=True,
    )
    label: str | None = _declare(
        "LABEL",
        parse_label,
        default=None,
        accepted="printable text of at most 200 characters",
        doc="Free text stored with every report (a release, a commit), for comparing later.",
    )
    file_mode: int = _declare(
        "FILE_MODE",
        parse_file_mode,
        default="0600",
        accepted="an octal mode between 0600 and 0666",
        doc="Permissions of report files. Profiles reveal code paths and timings, so only the owner can "
        "read them by default; `0640` lets a sidecar in the same group read them (the directory is then "
        "created group-readable too).",
    )
    queue_size: int = _declare(
        "QUEUE_SIZE",
        parse_queue_size,
        default="256",
        accepted="a whole number from 1 to 100000",
        doc="How many finished profiles a worker holds while its writer thread saves them. When full, new "
        "profiles are dropped and counted (logged once a minute), never waited for.",
    )
    mode: str = _declare(
        "MODE",
        parse_mode,
        default="request",
        accepted="request or worker",
        doc="`request`: one report per profiled request. `worker`: each worker profiles continuously and "
        "writes one report per window (every `GUNICORN_PYINSTRUMENT_FLUSH_INTERVAL` seconds and at exit), "
        "aggregated by call stack so memory stays bounded whatever the uptime. In worker mode the rate, "
        "filters, minimum duration and token do not apply: everything the worker runs is profiled.",
    )
    engine: str = _declare(
        "ENGINE",
        parse_engine,
        default="pyinstrument",
        accepted="pyinstrument or sampler",
        doc="How stacks are captured. `pyinstrument`: pyinstrument's profiler, an exact call tree with "
        "small functions, but its hook runs on every Python call (about x3 on Python-heavy code, so "
        "profile a fraction of requests). `sampler`: a thread of the worker reads the stacks of the "
        "threads serving profiled requests every `GUNICORN_PYINSTRUMENT_INTERVAL` (0.01, 100 Hz, "
        "unless set), within `GUNICORN_PYINSTRUMENT_MAX_OVERHEAD` of a CPU (docs/benchmarks.md), so "
        "every request can be profiled in production, with functions shorter than the interval "
        "seen only statistically. Both engines profile per request on every worker class (by "
        "thread, greenlet or asyncio task) and follow the work a request hands to thread pools.",
    )
    max_overhead: float | None = _declare(
        "MAX_OVERHEAD",
        parse_overhead,
        default="1%",
        accepted="a percentage greater than 0 and at most 100 (`1%`, `0.5%`), or `off`",
        doc="The sampler engine's budget: the most CPU time its thread may use, as a share of the "
        "wall-clock time (one CPU), which is the most it can take from the worker's Python threads. "
        "Every 0.25 s the sampler measures its own CPU time per sample and sets its interval so that "
        "it stays within the budget: as fast as `GUNICORN_PYINSTRUMENT_INTERVAL` when samples are "
        "cheap, down to 10 Hz when they are dear (many busy threads, deep stacks), and back up as soon "
        "as they are cheap again. Every report records the rate achieved and what the sampler cost "
        "(docs/benchmarks.md). `off`: always at the interval. No effect on the pyinstrument engine.",
    )
    flush_interval: float = _declare(
        "FLUSH_INTERVAL",
        parse_flush_interval,
        default="60",
        accepted="seconds, from 1 to 86400",
        doc="Worker mode: how often each worker writes its window report and starts afresh. Windows close "
        "on the worker's heartbeat, so an idle sync worker closes them within `--timeout`/2 seconds.",
    )
    schedule: Schedule | None = _declare(
        "SCHEDULE",
        parse_schedule,
        default=None,
        accepted="DURATION/PERIOD with units ms, s, m or h (for example 30s/10m)",
        doc="Profile only for DURATION at the start of every PERIOD, aligned to the clock so that every "
        "worker and host profile the same windows (`30s/10m`: from :00:00 to :00:30, :10:00 to :10:30, ...). "
        "Outside a window nothing is started and nothing costs. In request mode it gates sampled requests "
        "(the token still works); in worker mode it starts and stops the worker profiler. Unset: always.",
    )
    control_file: str | None = _declare(
        "CONTROL_FILE",
        parse_control_file,
        default=None,
        accepted="a file path",
        doc="A runtime switch: when set, profiling runs only while this file exists, so `touch` and `rm` "
        "switch a running server on and off without a restart (checked at most about once a second, on "
        "the worker's own clock, never with a system call per request). It overrides everything, the "
        "token included. The server must start with `GUNICORN_PYINSTRUMENT=1` for the hooks to be there.",
    )
    record_query: bool = _declare(
        "RECORD_QUERY",
        parse_bool,
        default="off",
        accepted="1, true, yes, on, 0, false, no or off",
        doc="Opt-in: store each profiled request's query string in its metadata record (`query`). Off by "
        "default, because query strings often carry secrets (tokens, e-mail addresses, session ids) and "
        "reports are files that get copied around: with it on, treat reports as being as sensitive as "
        "your access logs (keep `GUNICORN_PYINSTRUMENT_FILE_MODE` at 0600). The query string never "
        "appears in file names, and the path filters never see it.",
    )
    record_headers: tuple[str, ...] = _declare(
        "RECORD_HEADERS",
        parse_header_names,
        default=None,
        accepted="a comma list of header names (not the token header)",
        doc="Opt-in: store these request headers' values in each profiled request's metadata record "
        "(`headers`, names in lower case), for example `User-Agent,X-Request-Id`. Unset: no header is "
        "stored. Listing `Cookie` or `Authorization` stores credentials in the reports: do so only "
        f"knowingly. `{TOKEN_HEADER}` is refused.",
    )
    max_reports: int | None = _declare(
        "MAX_REPORTS",
        parse_max_reports,
        default=None,
        accepted="a whole number, 1 or more",
        doc="Retention: keep at most this many reports in the directory; the oldest are removed first "
        "(every file of a report, its metadata first). Enforced while the server runs by the master's "
        "low-priority helper process, within about a second of a report being written, and by "
        "`gunicorn-pyinstrument prune`. Unset: no limit.",
    )
    max_bytes: int | None = _declare(
        "MAX_BYTES",
        parse_max_bytes,
        default=None,
        accepted="a size in bytes with an optional unit: KB, MB, GB, TB (powers of 1000) or KiB, MiB, "
        "GiB, TiB (powers of 1024), for example 500MB",
        doc="Retention: keep the reports' files under this many bytes in all; the oldest reports are "
        "removed first, as for `GUNICORN_PYINSTRUMENT_MAX_REPORTS` (both may be set). Reports still being "
        "rendered are counted once they are complete. Unset: no limit.",
    )
    upload: S3Location | None = _declare(
        "UPLOAD",
        parse_upload,
        default=None,
        accepted="an s3://BUCKET/PREFIX URL",
        doc="Ship reports to S3 or any S3-compatible object storage, for a fleet of containers whose disks "
        "do not last (docs/fleet.md). Complete reports are uploaded by the master's low-priority helper "
        "process, never by a worker and never on a request's path, to "
        "`PREFIX/YYYY-MM-DD/HOST/NAME.*` (the record last), then removed from "
        "`GUNICORN_PYINSTRUMENT_DIR`, which becomes a local spool: while the store cannot be reached, "
        "reports wait there and uploads are retried. Needs boto3 (`pip install "
        "'gunicorn-pyinstrument[s3]'`), checked at start-up; the store itself is not contacted then. "
        "Credentials and region come from the standard AWS environment (`AWS_*` variables, profiles, "
        "instance and container roles). Not with `GUNICORN_PYINSTRUMENT_MAX_REPORTS` or `MAX_BYTES`: "
        "keep reports in the bucket with lifecycle rules. The CLI reads the same URL with "
        "`--dir s3://BUCKET/PREFIX`. Unset: reports stay in the directory.",
    )
    s3_endpoint_url: str | None = _declare(
        "S3_ENDPOINT_URL",
        parse_endpoint_url,
        default=None,
        accepted="an http:// or https:// URL",
        doc="The endpoint of an S3-compatible store (MinIO, Ceph, R2, ...), for the server's uploads and "
        "the CLI. Unset: boto3's own choice, which honours `AWS_ENDPOINT_URL_S3` and `AWS_ENDPOINT_URL`, "
        "else AWS.",
    )
    spool_max_bytes: int = _declare(
        "SPOOL_MAX_BYTES",
        parse_size,
        default="1GB",
        accepted="a size in bytes with an optional unit, as for `GUNICORN_PYINSTRUMENT_MAX_BYTES`",
        doc="With `GUNICORN_PYINSTRUMENT_UPLOAD`: the most the local directory may hold while reports wait "
        "for the store. Past it, workers drop new reports (counted and logged) rather than fill the disk; "
        "reports already waiting are kept and uploaded when the store is back. Measured by the helper "
        "process about once a second, and obeyed by the workers' writer threads within a second, so it "
        "may be exceeded by about a second's worth of reports; no worker scans the directory.",
    )
    cache_dir: str | None = _declare(
        "CACHE_DIR",
        parse_control_file,
        default=None,
        accepted="a directory path",
        doc="The command line only: where `--dir s3://...` keeps its local copy of the bucket's reports, so "
        "that no report is downloaded twice. Unset: `$XDG_CACHE_HOME/gunicorn-pyinstrument/s3/BUCKET/...` "
        "(`~/.cache/...`), one directory per bucket, prefix and endpoint. `--cache DIR` overrides it.",
    )
    base_config: str | None = _declare(
        "BASE_CONFIG",
        parse_base_config,
        default=None,
        accepted="a path to an existing gunicorn config file, or python:module.name",
        doc="Your own gunicorn config. The plugin's config module loads it (settings and hooks) and chains "
        "its hooks with the plugin's, so profiling needs no edited file.",
    )

    @property
    def retention(self) -> bool:
        return self.max_reports is not None or self.max_bytes is not None

    @property
    def rendered_formats(self) -> tuple[str, ...]:
        """Formats rendered outside the workers (everything but the session)."""
        return tuple(f for f in self.formats if f != "session")


def declarations() -> list[tuple[str, Declaration]]:
    return [(f.name, f.metadata["declaration"]) for f in dataclasses.fields(Settings)]


def _shown(decl: Declaration, raw: str) -> str:
    return f"<hidden, {len(raw)} characters>" if decl.secret else repr(raw)


def _parsed(decl: Declaration, env: Mapping[str, str]) -> Any:
    raw = env.get(decl.env)
    if raw is None:
        raw = decl.default
    if raw is None:
        return decl.parse("")
    try:
        return decl.parse(raw)
    except ValueError as exc:
        raise SettingError(
            f"{decl.env}={_shown(decl, raw)} is not valid ({exc}): expected {decl.accepted}"
        ) from None


def load_one(attr: str, environ: Mapping[str, str] | None = None) -> Any:
    """One setting (by its attribute name), parsed and checked as :func:`load` does."""
    return _parsed(dict(declarations())[attr], os.environ if environ is None else environ)


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """Variables with our prefix that are not settings, sorted."""
    known = {decl.env for _, decl in declarations()}
    return sorted(name for name in env if name.startswith(f"{PREFIX}_") and name not in known)


#: Suffixes people give the switch, which has none, so that no spelling of it comes close.
_SWITCH_WORDS = {"ENABLE", "ENABLED", "ON", "ACTIVE", "PROFILE", "PROFILING"}


def nearest_setting(name: str) -> str:
    """The declared variable whose name is closest to ``name``."""
    if name.upper().removeprefix(f"{PREFIX}_") in _SWITCH_WORDS:
        return PREFIX
    known = [decl.env for _, decl in declarations()]
    # cutoff=0: there is always a nearest name, however far.
    return difflib.get_close_matches(name.upper(), known, n=1, cutoff=0)[0]


def check_names(env: Mapping[str, str]) -> None:
    """SettingError (one line) for a variable with our prefix that is not a setting: a misspelt
    name would otherwise be ignored, and its setting silently left at its default."""
    unknown = unknown_variables(env)
    if not unknown:
        return
    name = unknown[0]
    others = f" ({len(unknown) - 1} more unknown)" if len(unknown) > 1 else ""
    # The value is never shown: the misspelt variable may be the token.
    raise SettingError(f"{name} is not a setting{others}: did you mean {nearest_setting(name)}?")


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse every setting; raise SettingError (one line) on an unknown variable with our prefix, or
    on the first bad value."""
    env = os.environ if environ is None else environ
    check_names(env)
    settings = Settings(**{attr: _parsed(decl, env) for attr, decl in declarations()})
    if settings.engine == "sampler" and env.get(f"{PREFIX}_INTERVAL") is None:
        # The default interval is pyinstrument's; at 1 ms the sampler would take the GIL 1000 times
        # a second.
        settings = dataclasses.replace(settings, interval=SAMPLER_INTERVAL)
    if settings.upload is not None and settings.retention:
        # Retention would remove reports that are still waiting to be uploaded.
        attr = "max_reports" if settings.max_reports is not None else "max_bytes"
        decl = dict(declarations())[attr]
        raise SettingError(
            f"{decl.env}={env.get(decl.env)!r} cannot be used with {PREFIX}_UPLOAD: the directory is then "
            f"a spool bounded by {PREFIX}_SPOOL_MAX_BYTES; keep reports in the bucket with lifecycle rules"
        )
    return settings


def render_docs() -> str:
    """docs/configuration.md, generated from the declarations."""
    lines = [
        "# Configuration",
        "",
        "<!-- Generated by `make docs` (python -m gunicorn_pyinstrument.settings); do not edit. -->",
        "",
        "Every setting is an environment variable, read and validated once by the gunicorn master at "
        "start-up. A value that is not accepted stops gunicorn with one line naming the variable, the "
        "value and what is accepted. For the optional settings (regular expressions, token, label, "
        "schedule, control file, base config, retention limits, recorded headers, upload URL, endpoint URL, "
        "cache directory) an empty value means "
        "unset; for every other setting an empty value is an error. A variable that starts with "
        f"`{PREFIX}_` but is not one of these stops gunicorn too, with one line naming it and the "
        "nearest setting (`did you mean ...?`), so a misspelt setting is never silently ignored.",
        "",
        "| variable | default | accepted |",
        "|---|---|---|",
    ]
    for _, decl in declarations():
        default = "unset" if decl.default is None else f"`{decl.default}`"
        lines.append(f"| `{decl.env}` | {default} | {decl.accepted} |")
    lines.append("")
    for _, decl in declarations():
        lines += [f"## `{decl.env}`", "", decl.doc, ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render_docs())
