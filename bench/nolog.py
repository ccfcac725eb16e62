"""``modelrouter`` with its access log switched off: measures what writing the log costs.

Run as ``python -m bench.nolog serve --config X --port P`` (one worker only: uvicorn's
worker processes would import a fresh, unpatched module).
"""

from __future__ import annotations

from typing import Any


def _drop(self: object, record: Any) -> None:
    """Accept a record and write nothing."""


def main() -> None:
    """Patch :meth:`AccessLog.emit` to a no-op, then run the normal CLI."""
    from modelrouter.cli import main as cli_main
    from modelrouter.logs import AccessLog

    setattr(AccessLog, "emit", _drop)  # noqa: B010 - a deliberate monkeypatch
    raise SystemExit(cli_main())


if __name__ == "__main__":
    main()
