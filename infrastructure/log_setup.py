"""How `serve` and its UDP workers log: `[log] level` and `[log] format`.

"text" writes one line per record (time, level, logger, message); "json" writes one JSON
object per line for a log shipper, with the request fields of the request log (method,
aor, call_id, source, result, latency_ms, origin) as keys of their own. Both go to stderr,
which systemd's journal or a container runtime collects.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
REQUEST_FIELDS = ("method", "aor", "call_id", "source", "result", "latency_ms", "origin")
TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; `process` names the UDP worker that logged it."""

    def __init__(self, process: str | None = None) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc)
                            .isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.process is not None:
            entry["process"] = self.process
        for name in REQUEST_FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str, form: str, process: str | None = None) -> None:
    """Send every record at `level` or above to stderr in `form` ("text" or "json")."""
    handler = logging.StreamHandler(sys.stderr)
    if form == "json":
        handler.setFormatter(JsonFormatter(process))
    else:
        prefix = f"[{process}] " if process else ""
        handler.setFormatter(logging.Formatter(TEXT.replace("%(message)s",
                                                            prefix + "%(message)s")))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
