"""Sample apps and configs for gunicorn-pyinstrument (not part of the installed package)."""
