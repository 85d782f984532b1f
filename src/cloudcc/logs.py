"""The node's log: stderr and ``<data_dir>/logs/cloudcc.log`` (rotated), as text or JSON lines.

Records go through a queue to a listener thread, so writing the file never blocks the event
loop that moves RTP. Calls are logged at INFO from their events (tenant and contact ids
in every line); security events (failed SIP or API authentication, bans) are logged where
they happen.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOG_FILE = "cloudcc.log"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: attributes passed with ``extra=`` that JSON lines carry as their own fields
FIELDS = ("tenant_id", "contact_id", "agent_id", "event", "source", "username")

# contact events that make a call's log: one line each, at INFO
CALL_EVENTS = frozenset({
    "contact.created", "contact.connected", "contact.transferred", "contact.refused",
    "contact.ended", "recording.failed",
})  # fmt: skip

call_log = logging.getLogger("cloudcc.calls")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (ISO 8601, UTC), level, logger, message, ids."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(
    level: str,
    log_format: str,
    logs_dir: Path,
    max_bytes: int = 10 * 1024 * 1024,
    backups: int = 5,
) -> logging.handlers.QueueListener:
    """Send every record to stderr and the rotating file; returns the listener to stop."""
    formatter: logging.Formatter = (
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logs_dir.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [
        logging.StreamHandler(),
        logging.handlers.RotatingFileHandler(
            logs_dir / LOG_FILE, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        ),
    ]
    for handler in handlers:
        handler.setFormatter(formatter)
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(logging.handlers.QueueHandler(records))
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    listener = logging.handlers.QueueListener(records, *handlers, respect_handler_level=True)
    listener.start()
    return listener


def log_call_event(tenant_id: str, type: str, data: dict[str, Any]) -> None:
    """One INFO line for a call's event, with its tenant and contact ids."""
    details = " ".join(
        f"{key}={data[key]}"
        for key in ("agent_id", "queue", "dialed", "customer", "end_cause", "disposition", "reason")
        if data.get(key) not in (None, "")
    )
    call_log.info(
        "tenant %s contact %s: %s %s",
        tenant_id,
        data.get("contact_id"),
        type,
        details,
        extra={
            "tenant_id": tenant_id,
            "contact_id": data.get("contact_id"),
            "agent_id": data.get("agent_id"),
            "event": type,
        },
    )
