"""The catalog: an index of every report in the output directory, the queries over it, retention.

Read by the command line, the web page and the master's helper process (retention, uploads); never
imported into gunicorn's master or its workers, which only write files. One module a concept:

- ``entry.py``: one report, as its metadata record describes it;
- ``index.py``: :class:`Catalog`, the reports of one directory, kept up to date with the records;
  ``database.py``, the SQLite file that holds them;
- ``query.py``: which reports (:class:`Query`, its keys and the orders of a list);
- ``endpoints.py`` and ``stats.py``: endpoints, and the statistics of ``top``;
- ``drops.py``: the reports the workers dropped (queue full, spool full), in all and per worker;
- ``retention.py``: which reports go when the directory holds too many, and how;
- ``source.py``: where the files of a copy of remote storage come from.
"""

from .database import INDEX_VERSION
from .drops import Drops, WorkerDrops
from .endpoints import fold_path, request_endpoint
from .entry import Entry
from .index import MTIME_GRACE_SECONDS, Catalog, CatalogError
from .query import ORDERS, QUERY_KEYS, Query, strip_suffix
from .retention import ORPHAN_SECONDS
from .source import Source, attach_source
from .stats import TOP_ORDERS, EndpointStats, percentile, top, top_of

__all__ = [
    "INDEX_VERSION",
    "MTIME_GRACE_SECONDS",
    "ORDERS",
    "ORPHAN_SECONDS",
    "QUERY_KEYS",
    "TOP_ORDERS",
    "Catalog",
    "CatalogError",
    "Drops",
    "EndpointStats",
    "Entry",
    "Query",
    "Source",
    "WorkerDrops",
    "attach_source",
    "fold_path",
    "percentile",
    "request_endpoint",
    "strip_suffix",
    "top",
    "top_of",
]
