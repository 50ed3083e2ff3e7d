"""Deterministic data of the BlueCurrent simulator: charge points, statuses, transactions.

Shapes follow the public formats (bluecurrent-api's examples, pybluecurrent's README): a
status is a pure function of the charge point and its message counter, so a test can tell
exactly which message it stored; transactions carry the quirks of the real API (cost fields
and `socket_id` sometimes strings, names sometimes null, a running transaction without end).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = ["GARBAGE", "SimData", "evse_name"]

_TX_FORMAT = "%d-%m-%Y %H:%M:%S"
_TX_BASE = datetime(2026, 3, 1, 8, 0, 0)

GARBAGE: tuple[str, ...] = (
    '{"object": "CH_STATUS", "evse_id": ',
    "[1, 2, 3]",
    '{"evse_id": "BCU100000", "data": {}}',
    '{"object": "SURPRISE_OBJECT", "data": {}}',
    '{"object": "CH_STATUS", "evse_id": "BCU100000", "data": {"actual_v1": "high", '
    '"actual_v2": 230, "actual_v3": 230, "actual_p1": 1, "actual_p2": 1, "actual_p3": 1, '
    '"actual_kwh": 1, "activity": "charging", "vehicle_status": "C"}}',
)
"""Malformed frames, one of each kind: not JSON, not an object, no object, unknown object,
wrong field type."""


def evse_name(index: int) -> str:
    return f"BCU{100000 + index}"


@dataclass
class SimData:
    """The account behind the simulator."""

    charge_points: int = 3
    transactions_per_charge_point: int = 30
    ongoing: bool = True
    counters: dict[str, int] = field(default_factory=dict)
    transactions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._evse_ids = [evse_name(index) for index in range(self.charge_points)]
        self._index = {evse: index for index, evse in enumerate(self._evse_ids)}
        for index in range(self.charge_points):
            evse = evse_name(index)
            self.counters[evse] = 0
            self.transactions[evse] = [
                self._transaction(index, number)
                for number in range(self.transactions_per_charge_point)
            ]

    @property
    def evse_ids(self) -> list[str]:
        return list(self._evse_ids)

    def charge_point(self, evse_id: str) -> dict[str, Any]:
        index = self._index[evse_id]
        return {
            "evse_id": evse_id,
            "name": f"Charge point {index}" if index % 2 else "",
            "model_type": "H:MOVE-C32T2",
            "chargepoint_type": "HIDDEN",
            "is_cable": True,
            "public_charging": {"value": False, "permission": "write"},
            "default_card": self.card(),
            "plug_and_charge": {"value": True, "permission": "write"},
            "smart_charging": index % 3 == 0,
            "activity": "available",
            "location": {"x_coord": 52.09, "y_coord": 5.12, "city": "Utrecht", "country": "NL"},
        }

    def card(self) -> dict[str, Any]:
        return {
            "uid": "A1B2C3D4E5F6",
            "id": "NL-ABC-123456-0",
            "name": "Fleet card",
            "customer_name": "Simulated Operator",
            "valid": 1,
        }

    def settings(self, evse_id: str) -> dict[str, Any]:
        point = self.charge_point(evse_id)
        keys = ("evse_id", "model_type", "chargepoint_type", "is_cable", "public_charging")
        settings = {key: point[key] for key in keys}
        settings.update(
            plug_and_charge=point["plug_and_charge"],
            smart_charging=point["smart_charging"],
            default_card=self.card(),
            led_intensity={"value": 0, "permission": "none"},
            led_interaction={"value": False, "permission": "none"},
        )
        return settings

    def status_data(self, evse_id: str, counter: int | None = None) -> dict[str, Any]:
        """`CH_STATUS.data` of a charge point at message counter `counter`."""
        k = self.counters[evse_id] if counter is None else counter
        index = self._index[evse_id]
        amps = k % 17
        charging = amps > 0
        kwh = round(k * 0.01, 2)
        return {
            "actual_v1": 230.0 + (k % 7) * 0.5,
            "actual_v2": 231.0 - (k % 3) * 0.5,
            "actual_v3": 229.0 + (k % 5) * 0.25,
            "actual_p1": amps,
            "actual_p2": amps,
            "actual_p3": 0 if index % 2 else amps,
            "actual_kwh": kwh,
            "activity": "charging" if charging else "available",
            "vehicle_status": "C" if charging else "A",
            "max_usage": 32,
            "smartcharging_max_usage": 16,
            "max_offline": 8,
            "total_cost": round(kwh * 0.25, 2),
            "start_datetime": "20260301 08:00:00",
            "stop_datetime": "" if charging else "20260301 09:30:00",
            "offline_since": "",
            "evse_id": evse_id,
        }

    def next_status(self, evse_id: str) -> dict[str, Any]:
        self.counters[evse_id] += 1
        return {"object": "CH_STATUS", "evse_id": evse_id, "data": self.status_data(evse_id)}

    def grid(self, evse_id: str) -> dict[str, Any]:
        k = self.counters[evse_id]
        return {"grid_actual_p1": 10 + k % 5, "grid_actual_p2": 9 + k % 4, "grid_actual_p3": 8}

    def grid_status(self, evse_id: str) -> dict[str, Any]:
        data = {"id": f"GRID-{evse_id}", **self.grid(evse_id)}
        data.update(grid_max_install=40, grid_max_reserved=25)
        return {"object": "GRID_STATUS", "data": data}

    def grid_current(self, evse_id: str) -> dict[str, Any]:
        return {"object": "GRID_CURRENT", "evse_id": evse_id, **self.grid(evse_id)}

    def answer(self, command: str, evse_id: str = "") -> dict[str, Any]:
        """The answer to a websocket GET_* command (the evse_id already checked)."""
        if command == "GET_CHARGE_POINTS":
            points = [self.charge_point(evse) for evse in self._evse_ids]
            return {"object": "CHARGE_POINTS", "data": points}
        if command == "GET_ACCOUNT":
            return {
                "object": "ACCOUNT", "full_name": "Simulated Operator", "tel": "",
                "email": "ops@example.org", "login": "ops@example.org",
                "first_login_app": "01-JAN-24",
            }  # fmt: skip
        if command == "GET_CHARGE_CARDS":
            card = {**self.card(), "date_created": "2024-01-02", "date_modified": "2024-02-03"}
            return {"object": "CHARGE_CARDS", "cards": [card]}
        if command == "GET_SUSTAINABILITY_STATUS":
            return {"object": "SUSTAINABILITY_STATUS", "trees": 3, "co2": 123.45}
        if command == "GET_CH_STATUS":
            return {"object": "CH_STATUS", "evse_id": evse_id, "data": self.status_data(evse_id)}
        if command == "GET_GRID_STATUS":
            return self.grid_status(evse_id)
        if command == "GET_CH_SETTINGS":
            return {"object": "CH_SETTINGS", "data": self.settings(evse_id)}
        raise KeyError(command)

    def _transaction(self, index: int, number: int, start: datetime | None = None) -> dict:
        evse = evse_name(index)
        begin = start or _TX_BASE + timedelta(hours=6 * number, minutes=7 * index)
        end = begin + timedelta(minutes=60 + 15 * (number % 4))
        kwh = 5.0 + (number % 10) * 1.5
        cost = round(kwh * 0.3, 2)
        return {
            "transaction_id": 10_000_000 + index * 10_000 + number,
            "chargepoint_id": evse,
            "chargepoint_type": "HIDDEN",
            "evse_name": None if number % 4 == 0 else f"Charge point {index}",
            "started_at": begin.strftime(_TX_FORMAT),
            "end_time": end.strftime(_TX_FORMAT),
            "kwh": f"{kwh:.2f}" if number % 3 == 0 else kwh,
            "card_id": "NL-ABC-123456-0",
            "card_name": None if number % 5 == 0 else "Fleet card",
            "total_costs": f"{cost:.2f}" if number % 2 == 0 else cost,
            "total_costs_ex_vat": round(cost / 1.21, 2),
            "vat": 21,
            "currency": "EUR",
            "socket_id": "1" if number % 2 else 1,
        }

    def add_transaction(self, evse_id: str, start: datetime | None = None) -> dict[str, Any]:
        """A new completed transaction starting at `start` (Amsterdam local time), by default
        an hour after the newest one of the charge point ends."""
        index = self._index[evse_id]
        if start is None:
            done = [tx for tx in self.transactions[evse_id] if tx["end_time"]]
            last = max(datetime.strptime(tx["end_time"], _TX_FORMAT) for tx in done)
            start = last + timedelta(hours=1)
        tx = self._transaction(index, len(self.transactions[evse_id]), start)
        self.transactions[evse_id].append(tx)
        return tx

    def sorted_transactions(self, evse_ids: list[str], newest_first: bool) -> list[dict]:
        """Transactions by stop time; running ones (no stop yet) first when newest first."""
        chosen = [tx for evse in evse_ids for tx in self.transactions.get(evse, [])]
        running = []
        if self.ongoing and evse_ids:
            index = self._index.get(evse_ids[0], 0)
            running = [
                {
                    **self._transaction(index, 99_999, datetime(2026, 4, 1, 9, 0)),
                    "end_time": "",
                    "kwh": 1.5,
                }
            ]

        def stop(tx: dict) -> datetime:
            return datetime.strptime(tx["end_time"], _TX_FORMAT)

        done = sorted(chosen, key=stop, reverse=newest_first)
        return running + done if newest_first else done + running
