"""Builders for `anomaly` points, the one shape every check emits (see DESIGN.md)."""

from __future__ import annotations

from datetime import datetime

from daemon.points import Point, to_ns

__all__ = ["anomaly_point"]


def anomaly_point(
    *,
    source: str,
    rule: str,
    subject: str,
    at: datetime | int,
    value: float | None = None,
    threshold: float | None = None,
    detail: str = "",
    session_id: str = "",
    operational_unit: str = "",
    station: str = "",
    offset_ns: int = 0,
) -> Point:
    """An `anomaly` point for `rule` on `subject` at the time of the record judged.

    `at` is an aware datetime or nanoseconds; `offset_ns` is the session's deterministic
    sub-second offset so per-session anomalies own their (series, time)."""
    fields: dict[str, float | str] = {}
    if value is not None:
        fields["value"] = float(value)
    if threshold is not None:
        fields["threshold"] = float(threshold)
    if session_id:
        fields["session_id"] = session_id
    fields["detail"] = detail
    tags = {
        "source": source,
        "rule": rule,
        "subject": subject,
        "operational_unit": operational_unit,
        "station": station,
    }
    stamp = at if isinstance(at, int) else to_ns(at)
    return Point("anomaly", tags, fields, stamp + offset_ns)
