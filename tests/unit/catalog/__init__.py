"""Tests of ``gunicorn_pyinstrument.catalog``, a file for each of its modules."""
