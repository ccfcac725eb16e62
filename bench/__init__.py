"""The modelrouter benchmark: ``python -m bench`` (see ``bench/__main__.py`` and README)."""
