"""A local copy of the reports kept in object storage, for the command line (``--dir s3://...``).

:meth:`Mirror.sync` lists the bucket under the prefix (only the days that a ``--since``/``--until``
selection needs), downloads the metadata records that are not in the local cache yet, and drops
from the cache the reports whose records are gone from the bucket (expired by a lifecycle rule).
Every command then runs the ordinary :class:`~gunicorn_pyinstrument.catalog.Catalog` over the
cache directory. A report's other files are downloaded only when a command opens them: the mirror
is attached to the catalog as its source. So ``list`` and ``top`` over a whole fleet download only
the small records, and nothing is downloaded twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from ..catalog import attach_source
from ..directory import METADATA_SUFFIX, report_name
from ..inputs import S3Location
from ..stores.local import LocalStore, check_name, ensure_directory
from ..stores.s3 import MissingObject, day_prefixes, object_key, report_day

DOWNLOAD_THREADS = 16
CACHE_MODE = 0o600  # profiles reveal code paths: the cache is the user's alone


class Reader(Protocol):
    def get(self, key: str) -> bytes: ...

    def list(self, prefix: str) -> Iterable[tuple[str, int]]: ...


def default_cache_dir(location: S3Location, endpoint_url: str | None = None) -> str:
    """``$XDG_CACHE_HOME/gunicorn-pyinstrument/s3/BUCKET/<hash of endpoint and prefix>``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = hashlib.sha256(f"{endpoint_url or ''}\n{location.prefix}".encode()).hexdigest()[:16]
    return os.path.join(base, "gunicorn-pyinstrument", "s3", location.bucket, digest)


@dataclass(frozen=True)
class SyncResult:
    reports: int  # records listed in the bucket (within the days listed)
    downloaded: int
    removed: int


class Mirror:
    def __init__(self, location: S3Location, directory: str, store: Reader) -> None:
        self.location = location
        self.directory = os.path.abspath(directory)
        self.store = store
        ensure_directory(self.directory, CACHE_MODE)
        self.local = LocalStore(self.directory, CACHE_MODE)
        #: Objects downloaded by this process: records and files.
        self.downloaded = 0
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def attach(self) -> Mirror:
        """Catalogs of the cache directory fetch missing files from the store from now on."""
        attach_source(self.directory, self)
        return self

    # --- the records ---

    def sync(self, since: float | None = None, until: float | None = None) -> SyncResult:
        """Bring the cache's records up to date with the bucket. Raises StoreError."""
        days = None
        if since is not None:
            days = day_prefixes(self.location, since, time.time() if until is None else until)
        prefixes = days or [self.location.key() + "/" if self.location.prefix else ""]
        remote: dict[str, str] = {}  # record file name -> key
        for prefix in prefixes:
            for key, size in self.store.list(prefix):
                filename = key.rsplit("/", 1)[-1]
                try:
                    check_name(filename)
                except ValueError:
                    continue  # not written by the uploader
                self._sizes[filename] = size
                if filename.endswith(METADATA_SUFFIX):
                    remote[filename] = key
        cached = set(self.local.names(METADATA_SUFFIX))
        new = sorted(set(remote) - cached)
        downloaded = sum(self._download_all((remote[f], f) for f in new))
        removed = 0
        listed_days = None if days is None else {p.rstrip("/").rsplit("/", 1)[-1] for p in days}
        for filename in cached - set(remote):
            name = filename[: -len(METADATA_SUFFIX)]
            if listed_days is None or report_day(name) in listed_days:
                self._forget(name)
                removed += 1
        return SyncResult(len(remote), downloaded, removed)

    def _download_all(self, pairs: Iterable[tuple[str, str]]) -> list[bool]:
        pairs = list(pairs)
        if len(pairs) <= 1:
            return [self._download(key, filename) for key, filename in pairs]
        with ThreadPoolExecutor(min(DOWNLOAD_THREADS, len(pairs))) as pool:
            return list(pool.map(lambda pair: self._download(*pair), pairs))

    def _download(self, key: str, filename: str) -> bool:
        try:
            data = self.store.get(key)
        except MissingObject:
            return False  # expired between the listing and now
        self.local.put(filename, data)
        with self._lock:
            self.downloaded += 1
        return True

    def _forget(self, name: str) -> None:
        """Remove a report from the cache: its record first, then whatever files were fetched."""
        meta_name = name + METADATA_SUFFIX
        files: list[str] = []
        with contextlib.suppress(OSError, ValueError):
            files = [str(f) for f in (json.loads(self.local.get(meta_name)).get("files") or {}).values()]
        self.local.remove(meta_name)
        for filename in files:
            with contextlib.suppress(ValueError):
                self.local.remove(filename)

    # --- the catalog's source: the other files, on demand ---

    def fetch(self, filename: str) -> None:
        """Download one file of a cached report into the cache. StoreError (an OSError) when the
        store fails; MissingObject (a FileNotFoundError) when it has no such object."""
        name = report_name(check_name(filename))
        if name is None:
            raise FileNotFoundError(f"{filename} is not a report file")
        record = json.loads(self.local.get(name + METADATA_SUFFIX))
        if not isinstance(record, dict):
            raise FileNotFoundError(f"no metadata record for {filename}")
        if not self._download(object_key(self.location, record, filename), filename):
            raise MissingObject(f"{filename} is no longer in {self.location}")

    def size(self, filename: str) -> int | None:
        return self._sizes.get(filename)

    def fetch_many(self, filenames: Iterable[str]) -> None:
        """Download these files, several at once, skipping those already here. A failure is left for
        the reader to meet (and report, per report) when it opens the file."""
        missing = [f for f in dict.fromkeys(filenames) if not os.path.exists(os.path.join(self.directory, f))]

        def one(filename: str) -> None:
            with contextlib.suppress(Exception):
                self.fetch(filename)

        if len(missing) <= 1:
            for filename in missing:
                one(filename)
            return
        with ThreadPoolExecutor(min(DOWNLOAD_THREADS, len(missing))) as pool:
            list(pool.map(one, missing))
