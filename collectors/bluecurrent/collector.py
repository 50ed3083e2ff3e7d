"""The BlueCurrent collector: live statuses (stream), transactions (job), snapshot (job).

- `stream()` runs the websocket subscription for the daemon's lifetime (`stream.py`); it
  returns, and the collector stops, only when the API token is invalid.
- The `transactions` job pages `POST /gettransactions` newest first per charge point and
  turns every completed transaction not yet stored into a `ChargingSession`, passed through
  the session checks and committed with its checkpoint in one transaction. The checkpoint
  per charge point keeps the newest stop time and the ids seen in the last `lookback` hours,
  so a transaction is stored once even when it shows up late.
- The `snapshot` job is for `chargeflux run --once`: one connection, every status, done.
  When the stream runs it already has the statuses, and the job does nothing.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from collectors.bluecurrent.backoff import Backoff, Clock, LoginLimiter, SystemClock
from collectors.bluecurrent.client import Auth, BlueCurrentApi, InvalidToken
from collectors.bluecurrent.config import BlueCurrentConfig
from collectors.bluecurrent.models import Transaction
from collectors.bluecurrent.rest import RestClient
from collectors.bluecurrent.stream import Subscription
from daemon.collector import CollectorContext, Job
from daemon.errors import UpstreamError
from daemon.records import ChargingSession

__all__ = ["BlueCurrentCollector", "transaction_session"]

SOURCE = "bluecurrent"


def transaction_session(config: BlueCurrentConfig, tx: Transaction) -> ChargingSession | None:
    """The session of a completed transaction (None while it is still running)."""
    if tx.started_at is None or tx.end_time is None:
        return None
    site = config.site(tx.chargepoint_id)
    return ChargingSession(
        source=SOURCE,
        session_id=str(tx.transaction_id),
        pdc=tx.chargepoint_id,
        station=site.station,
        operational_unit=site.operational_unit,
        siren=site.siren,
        start=tx.started_at,
        end=tx.end_time,
        energy_kwh=float(tx.kwh or 0.0),
        max_power_kw=site.max_power_kw,
        updated_at=tx.end_time,
    )


class BlueCurrentCollector:
    """Statuses over the websocket, transactions over REST, one shared login."""

    def __init__(
        self,
        config: BlueCurrentConfig,
        ctx: CollectorContext,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        lookback: timedelta = timedelta(hours=48),
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._lookback = lookback
        self.limiter = LoginLimiter(
            self.clock, max_logins=config.max_logins, window=config.login_window_s
        )
        self.auth = Auth(
            config.ws_url,
            config.api_token,
            clock=self.clock,
            limiter=self.limiter,
            counters=ctx.counters,
            log=ctx.log,
            timeout=config.request_timeout_s,
        )
        self.rest = RestClient(
            ctx.http, config.api_url, self.auth, ctx.counters, timeout=config.request_timeout_s
        )
        self.backoff = Backoff(
            self.clock,
            self._rng,
            initial=config.backoff_initial_s,
            cap=config.backoff_max_s,
            stable_after=config.stable_after_s,
        )
        self._charge_points: list[str] = list(config.evse_ids)
        self._known = asyncio.Event()
        if self._charge_points:
            self._known.set()
        self._streaming = False
        self._snapshotting = False
        self._ended = asyncio.Event()
        self.subscription: Subscription | None = None

    def _subscription(self) -> Subscription:
        return Subscription(
            self.ctx,
            self.auth,
            ws_url=self.config.ws_url,
            clock=self.clock,
            backoff=self.backoff,
            evse_ids=self.config.evse_ids,
            on_charge_points=self._seen_charge_points,
            timeout=self.config.request_timeout_s,
        )

    def _seen_charge_points(self, evse_ids: list[str]) -> None:
        self._charge_points = list(evse_ids)
        self._known.set()

    def jobs(self) -> Sequence[Job]:
        return [
            Job("snapshot", self.snapshot, every=timedelta(days=1), run_at_start=False),
            Job(
                "transactions",
                self.poll_transactions,
                every=timedelta(seconds=self.config.transactions_every_s),
            ),
        ]

    async def stream(self) -> None:
        """The live subscription; returns only when the API token is invalid."""
        self._streaming = True
        self.subscription = self._subscription()
        self._ended.clear()
        try:
            await self.subscription.run()
        finally:
            self._streaming = False
            self._ended.set()

    async def close(self) -> None:
        if self.subscription is not None:
            await self.subscription.drain()

    async def snapshot(self) -> None:
        """Every followed charge point's status and grid once (for `--once`)."""
        if self._streaming:
            return
        self._snapshotting = True
        self._ended.clear()
        try:
            subscription = self._subscription()
            await subscription.snapshot(self.config.snapshot_timeout_s)
        finally:
            self._snapshotting = False
            self._ended.set()
        self.ctx.log.info("bluecurrent_snapshot", statuses=subscription.received)

    async def charge_points(self) -> list[str]:
        """The followed charge points. BlueCurrent allows one connection per client, so
        while the stream or the snapshot is connected, wait for the list it receives; only
        otherwise open a connection to ask."""
        if self._known.is_set():
            return self._charge_points
        if self.auth.invalid:
            raise InvalidToken(self.auth.invalid)
        if self._streaming or self._snapshotting:
            waits = [asyncio.ensure_future(event.wait()) for event in (self._known, self._ended)]
            try:
                await asyncio.wait(
                    waits,
                    timeout=self.config.snapshot_timeout_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                for waiting in waits:
                    waiting.cancel()
            if self._known.is_set():
                return self._charge_points
            if self.auth.invalid:
                raise InvalidToken(self.auth.invalid)
            raise UpstreamError("the charge point list has not arrived yet")
        async with BlueCurrentApi(
            self.auth, self.config.ws_url, timeout=self.config.request_timeout_s
        ) as api:
            self._seen_charge_points([point.evse_id for point in await api.get_charge_points()])
        return self._charge_points

    async def poll_transactions(self) -> None:
        """Store every completed transaction not stored yet, per charge point."""
        for evse_id in await self.charge_points():
            await self._poll_charge_point(evse_id)

    async def _poll_charge_point(self, evse_id: str) -> None:
        key = f"transactions.{evse_id}"
        mark: dict[str, Any] | None = await self.ctx.checkpoints.get(key)
        newest = datetime.fromisoformat(mark["newest"]) if mark else None
        seen: dict[str, str] = dict(mark["seen"]) if mark else {}
        horizon = newest - self._lookback if newest else None

        def past_horizon(page: Any) -> bool:
            return horizon is not None and any(
                tx.end_time is not None and tx.end_time < horizon for tx in page.transactions
            )

        fresh: dict[str, Transaction] = {}
        async for page in self.rest.iterate_transactions(evse_id, stop=past_horizon):
            for tx in page.transactions:
                tx_id = str(tx.transaction_id)
                if tx.end_time is None or tx_id in seen or tx_id in fresh:
                    continue
                if horizon is not None and tx.end_time < horizon:
                    continue
                fresh[tx_id] = tx
        sessions = [
            session
            for tx in fresh.values()
            if (session := transaction_session(self.config, tx)) is not None
        ]
        if not sessions:
            return
        ends = [tx.end_time for tx in fresh.values() if tx.end_time is not None]
        latest = max([*ends, *([newest] if newest else [])])
        keep_from = latest - self._lookback
        seen.update({tx_id: tx.end_time.isoformat() for tx_id, tx in fresh.items() if tx.end_time})
        seen = {
            tx_id: end for tx_id, end in seen.items() if datetime.fromisoformat(end) >= keep_from
        }
        await self.ctx.emit.sessions(
            sessions, checkpoint={key: {"newest": latest.isoformat(), "seen": seen}}
        )
        self.ctx.log.info("bluecurrent_transactions", evse_id=evse_id, sessions=len(sessions))
