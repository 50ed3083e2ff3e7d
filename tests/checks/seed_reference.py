"""The seed notebook's session-cleaning pipeline (pandas), the reference for the engine.

Written as the notebook does it — one `DataFrame.apply(axis=1)` per rule, duplicates and
overlaps from columns shifted by one row — with the two changes the product defines: NEGS
uses total seconds (the notebook's `.seconds` is never negative), and rows are sorted by
charge point, start, end and session id (the notebook's SQL sorts by charge point and start
only, leaving ties to the database). Returns each session's rule bits.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from daemon.checks.rules import DUPS, ENEA, ENEU, ENEX, NEGS, ODUS, OVLP
from daemon.records import ChargingSession

__all__ = ["frame", "reference_flags"]


def frame(sessions: Sequence[ChargingSession]) -> pd.DataFrame:
    """The columns of the notebook's SQL query, one row per session."""
    return pd.DataFrame(
        {
            "entity": [s.entity for s in sessions],
            "siren": [s.siren for s in sessions],
            "code": [s.operational_unit for s in sessions],
            "id_station_itinerance": [s.station for s in sessions],
            "id_pdc_itinerance": [s.pdc for s in sessions],
            "max_power": [s.max_power_kw for s in sessions],
            "session_id": [s.session_id for s in sessions],
            "from": pd.to_datetime([s.start for s in sessions], utc=True),
            "to": pd.to_datetime([s.end for s in sessions], utc=True),
            "energy": [s.energy_kwh for s in sessions],
        }
    )


def negs(row: pd.Series) -> bool:
    return (row["to"] - row["from"]).total_seconds() < 0


def eneu(row: pd.Series) -> bool:
    return row["energy"] > 1000.0


def enea_max(row: pd.Series) -> float:
    return ((row["to"] - row["from"]).total_seconds() / 3600) * row["max_power"]


def enea(row: pd.Series) -> bool:
    return row["energy"] > enea_max(row) * 1.1


def odus(row: pd.Series) -> bool:
    return negs(row) and row["energy"] > 1


def enex(row: pd.Series) -> bool:
    return row["energy"] > 50.0 and row["energy"] > enea_max(row) * 2.0


def reference_flags(qc_sessions: pd.DataFrame) -> dict[str, int]:
    """Run the notebook's pipeline on `qc_sessions`; session id → rule bits."""
    qc_sessions = qc_sessions.sort_values(
        ["id_pdc_itinerance", "from", "to", "session_id"], kind="stable"
    ).reset_index(drop=True)

    qc_sessions["enea_max"] = qc_sessions.apply(enea_max, axis=1)
    qc_sessions["negs"] = qc_sessions.apply(negs, axis=1)
    qc_sessions["eneu"] = qc_sessions.apply(eneu, axis=1)
    qc_sessions["enea"] = qc_sessions.apply(enea, axis=1)
    qc_sessions["odus"] = qc_sessions.apply(odus, axis=1)
    qc_sessions["enex"] = qc_sessions.apply(enex, axis=1)

    # Ease comparison with previous row (as the notebook does)
    qc_sessions["p_id_pdc_itinerance"] = pd.concat(
        [pd.Series([None]), qc_sessions["id_pdc_itinerance"][:-1]]
    ).reset_index(drop=True)
    qc_sessions["p_from"] = pd.concat([pd.Series([None]), qc_sessions["from"][:-1]]).reset_index(
        drop=True
    )
    qc_sessions["p_to"] = pd.concat([pd.Series([None]), qc_sessions["to"][:-1]]).reset_index(
        drop=True
    )

    # Real duplicates
    qc_sessions["duplicate"] = (
        (qc_sessions["from"] == qc_sessions["p_from"])
        & (qc_sessions["to"] == qc_sessions["p_to"])
        & (qc_sessions["id_pdc_itinerance"] == qc_sessions["p_id_pdc_itinerance"])
    )
    # Overlaps
    qc_sessions["overlap"] = (qc_sessions["from"] < qc_sessions["p_to"]) & (
        qc_sessions["id_pdc_itinerance"] == qc_sessions["p_id_pdc_itinerance"]
    )

    bits = (
        qc_sessions["negs"].astype(int) * NEGS
        + qc_sessions["eneu"].astype(int) * ENEU
        + qc_sessions["enea"].astype(int) * ENEA
        + qc_sessions["odus"].astype(int) * ODUS
        + qc_sessions["enex"].astype(int) * ENEX
        + qc_sessions["duplicate"].astype(int) * DUPS
        + qc_sessions["overlap"].astype(int) * OVLP
    )
    return dict(zip(qc_sessions["session_id"], bits.tolist(), strict=True))
