"""The latest collected station snapshot, kept in the state directory.

Each successful poll replaces `<state_dir>/econnect-stations.json` atomically (temporary file,
fsync, rename): the raw records of the valid stations as the API sent them, the bad records,
the poll time and the page count. `chargeflux report stations` builds its spreadsheet from
this file without calling the API.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from collectors.econnect.models import BadRecord, ParsedStations
from daemon.errors import DataError

__all__ = ["SNAPSHOT_FILE", "Snapshot", "load_snapshot", "save_snapshot", "snapshot_path"]

SNAPSHOT_FILE = "econnect-stations.json"
_VERSION = 1


def snapshot_path(state_dir: Path) -> Path:
    """Where the snapshot lives in a state directory."""
    return state_dir / SNAPSHOT_FILE


@dataclass(frozen=True)
class Snapshot:
    """One complete pull: when, from which business partner, and what came back."""

    polled_at: datetime
    business_partner: str
    pages: int
    parsed: ParsedStations


def save_snapshot(path: Path, snapshot: Snapshot) -> None:
    """Replace the snapshot file atomically (blocking: call it in a thread)."""
    document = {
        "version": _VERSION,
        "polled_at": snapshot.polled_at.isoformat(),
        "business_partner": snapshot.business_partner,
        "pages": snapshot.pages,
        "stations": snapshot.parsed.raw,
        "bad_records": [bad.as_dict() for bad in snapshot.parsed.bad],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".econnect-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, ensure_ascii=False, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        directory = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def load_snapshot(path: Path) -> Snapshot:
    """Read a snapshot; the stations are validated again, exactly as at poll time."""
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable station snapshot: {exc}") from None
    if not isinstance(document, dict) or document.get("version") != _VERSION:
        raise DataError(f"{path}: not a version {_VERSION} eConnect station snapshot")
    try:
        parsed = ParsedStations()
        for position, record in enumerate(document["stations"]):
            parsed.add(-1, position, record)
        parsed.bad[:0] = [BadRecord(**bad) for bad in document["bad_records"]]
        return Snapshot(
            polled_at=datetime.fromisoformat(document["polled_at"]),
            business_partner=str(document["business_partner"]),
            pages=int(document["pages"]),
            parsed=parsed,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: damaged eConnect station snapshot: {exc}") from None
