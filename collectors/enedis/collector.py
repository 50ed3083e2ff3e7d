"""The Enedis collector: backfill newest first, then a daily poll, per PRM stream.

One job, `enedis`, runs at start-up and every day after 08:00 Europe/Paris at a non-round
minute. Each run walks every enabled stream (PRM x kind x direction) concurrently; all
requests share the account quota, which serves them in arrival order, so every stream's
newest window is fetched before anyone's older history. Each window's points, anomalies and
the stream's new checkpoint are committed in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from collectors.enedis.auth import OAuthToken, StaticToken, TokenSource
from collectors.enedis.client import (
    WINDOW_DAYS,
    BeforeActivation,
    EnedisClient,
    NoData,
    StreamRefused,
)
from collectors.enedis.config import EnedisConfig, PrmConfig
from collectors.enedis.models import Direction, Kind, MeterSeries
from collectors.enedis.parsing import PARIS
from collectors.enedis.plan import StreamState, Window, done_until, next_window, start_bound
from collectors.enedis.points import series_anomalies, series_points
from collectors.enedis.quota import AccountQuota, Clock, Quota, WallClock
from daemon.anomaly import anomaly_point
from daemon.checks.series import SeriesChecker
from daemon.collector import CollectorContext, Job, PolledCollector
from daemon.errors import AuthError, SourceError

__all__ = ["EnedisCollector", "poll_minute"]


def poll_minute(config: EnedisConfig) -> tuple[int, int]:
    """(hour, minute) of the daily poll: `poll_at`, or a stable non-round minute after 08:00
    derived from the account, so installations do not all call Enedis at once."""
    if config.poll_at:
        hour, minute = (int(part) for part in config.poll_at.split(":"))
        return hour, minute
    seed = (config.client_id or "") + ",".join(sorted(p.prm for p in config.prms))
    minute = 7 + hashlib.blake2b(seed.encode(), digest_size=2).digest()[0] % 48
    return 8, minute + 1 if minute % 5 == 0 else minute


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf of a (nested) exception group."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


def _streams(prm: PrmConfig) -> list[tuple[Kind, Direction]]:
    out: list[tuple[Kind, Direction]] = []
    directions: list[Direction] = [
        d for d, on in (("consumption", prm.consumption), ("production", prm.production)) if on
    ]
    for direction in directions:
        if prm.load_curve:
            out.append(("load_curve", direction))
        if prm.daily:
            out.append(("daily", direction))
    if prm.max_power and prm.consumption:
        out.append(("max_power", "consumption"))
    return out


class EnedisCollector(PolledCollector):
    """Collects load curves, daily energy and max power of the configured PRMs."""

    def __init__(
        self,
        config: EnedisConfig,
        ctx: CollectorContext,
        clock: Clock | None = None,
        quota: Quota | None = None,
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.clock = clock or WallClock()
        self.log = ctx.log.bind(source="enedis")
        self.quota = quota or AccountQuota(
            self.clock,
            config.requests_per_second,
            config.requests_per_hour,
            config.quota_margin_s,
        )
        self.tokens = self._tokens()
        self.client = EnedisClient(
            config, ctx.http, self.tokens, self.quota, self.clock, ctx.counters, self.log
        )
        self.checker = SeriesChecker("enedis")
        self._running = asyncio.Lock()
        self._states: dict[str, StreamState] = {}
        self._power: dict[str, float | None] = {}

    def _tokens(self) -> TokenSource:
        config = self.config
        if config.token is not None:
            return StaticToken(config.token)
        assert config.client_id and config.client_secret
        url = config.token_url or config.base_url.rstrip("/") + "/oauth2/v3/token"
        return OAuthToken(
            self.ctx.http,
            url,
            config.client_id,
            config.client_secret,
            self.clock,
            self.ctx.counters,
            timeout_s=config.timeout_s,
        )

    def jobs(self) -> Sequence[Job]:
        hour, minute = poll_minute(self.config)
        return [Job("enedis", self.sync, cron=f"{minute} {hour} * * *", timezone="Europe/Paris")]

    def today(self) -> date:
        return datetime.fromtimestamp(self.clock.now(), PARIS).date()

    async def sync(self) -> None:
        """Fetch every stream up to yesterday (backfill included); one run at a time."""
        if self._running.locked():
            self.log.info("enedis_sync_already_running")
            return
        async with self._running:
            await self._load_states()
            failures: list[str] = []
            try:
                async with asyncio.TaskGroup() as group:
                    for prm in self.config.prms:
                        group.create_task(self._run_prm(prm, failures))
            except* AuthError as errors:
                raise _first(errors) from None
            if failures:
                raise SourceError(f"{len(failures)} Enedis stream(s) failed: {', '.join(failures)}")

    async def _load_states(self) -> None:
        saved = await self.ctx.checkpoints.items()
        for prm in self.config.prms:
            for kind, direction in _streams(prm):
                state = StreamState.from_json(
                    prm.prm, kind, direction, saved.get(f"stream/{prm.prm}/{kind}/{direction}")
                )
                self._states[state.key] = state
            contract = saved.get(f"contract/{prm.prm}")
            if contract:
                self._power[prm.prm] = contract.get("kva")

    def _prm_states(self, prm: str) -> list[StreamState]:
        return [s for s in self._states.values() if s.prm == prm]

    async def _run_prm(self, prm: PrmConfig, failures: list[str]) -> None:
        await self._ensure_contract(prm)
        async with asyncio.TaskGroup() as group:
            for kind, direction in _streams(prm):
                state = self._states[f"stream/{prm.prm}/{kind}/{direction}"]
                group.create_task(self._run_stream(prm, state, failures))

    async def _ensure_contract(self, prm: PrmConfig) -> None:
        if (
            prm.subscribed_power_kva is not None
            or not self.config.fetch_contract
            or not self.client.has_contract_endpoint
            or not prm.consumption
            or prm.prm in self._power
        ):
            return
        try:
            kva = await self.client.subscribed_power_kva(prm.prm)
        except AuthError:
            raise
        except SourceError as exc:
            self.log.warning("enedis_contract_unavailable", prm=prm.prm, error=str(exc))
            self._power[prm.prm] = None
            return
        self._power[prm.prm] = kva
        await self.ctx.checkpoints.set(
            f"contract/{prm.prm}", {"kva": kva, "fetched": self.today().isoformat()}
        )

    def _limit_w(self, prm: PrmConfig, direction: Direction) -> float | None:
        if direction != "consumption":
            return None
        kva = prm.subscribed_power_kva or self._power.get(prm.prm)
        return kva * 1000.0 if kva else None

    async def _run_stream(self, prm: PrmConfig, state: StreamState, failures: list[str]) -> None:
        log = self.log.bind(prm=prm.prm, stream=f"{state.kind}/{state.direction}")
        skip_forward = False
        while True:
            today = self.today()
            if state.disabled:
                if today.isoformat() < state.disabled.get("retry_after", ""):
                    return
                state.disabled = None
            start = start_bound(
                state.kind,
                today,
                history_months=self.config.history_months,
                history_days=prm.history_days or self.config.history_days,
                floor=state.floor,
            )
            window = next_window(
                state, today, start, WINDOW_DAYS[state.kind], skip_forward=skip_forward
            )
            if window is None:
                return
            try:
                series = await self._fetch(state, window)
            except StreamRefused as exc:
                await self._disable(prm, state, exc, today)
                return
            except AuthError:  # the account itself is refused: stop the whole run
                raise
            except SourceError as exc:
                self.ctx.counters.inc("errors")
                log.error(
                    "enedis_window_failed",
                    first=str(window.first),
                    end=str(window.end),
                    error=str(exc),
                )
                failures.append(f"{prm.prm}/{state.kind}/{state.direction}")
                return
            if state.disabled:  # the PRM was refused meanwhile (another stream)
                return
            await self._commit(prm, state, window, series, today)
            if window.forward and (state.done_to is None or state.done_to < window.end):
                skip_forward = True  # recent days not published yet: ask at the next poll

    async def _fetch(self, state: StreamState, window: Window) -> MeterSeries | None:
        """The series for `window`; on ADAM-ERR0123 the earliest start that works is searched
        (halving the window) and becomes the stream's floor. None means no data."""
        try:
            series, dropped = await self.client.fetch(
                state.prm, state.kind, state.direction, window.first, window.end
            )
        except NoData:
            return None
        except BeforeActivation:
            return await self._after_activation(state, window)
        if dropped:
            self.log.warning("enedis_nonexistent_local_times", prm=state.prm, times=dropped[:5])
        return series

    async def _after_activation(self, state: StreamState, window: Window) -> MeterSeries | None:
        low, high, found = window.first, window.end, None
        while (high - low).days > 1:
            middle = low + timedelta(days=(high - low).days // 2)
            try:
                found, _ = await self.client.fetch(
                    state.prm, state.kind, state.direction, middle, window.end
                )
                high = middle
            except BeforeActivation:
                low = middle
            except NoData:
                high, found = middle, None
        state.floor = high
        self.log.warning(
            "enedis_backfill_start_moved",
            prm=state.prm,
            stream=f"{state.kind}/{state.direction}",
            floor=str(high),
            reason="ADAM-ERR0123: period before the meter's last activation",
        )
        return found

    async def _commit(
        self,
        prm: PrmConfig,
        state: StreamState,
        window: Window,
        series: MeterSeries | None,
        today: date,
    ) -> None:
        first = max(window.first, state.floor) if state.floor else window.first
        if first >= window.end:  # the meter was activated after this window
            state.record(window.first, window.end)
            await self.ctx.emit.points([], checkpoint={state.key: state.to_json()})
            return
        effective = Window(first, window.end, window.forward)
        points, data_days = series_points(state, series, effective, self.config.offpeak_for(prm))
        done_end = done_until(effective, today, self.config.pending_days, data_days)
        limit = self._limit_w(prm, state.direction)
        anomalies = series_anomalies(self.checker, state, series, effective.first, done_end, limit)
        state.record(first, done_end)
        await self.ctx.emit.points([*points, *anomalies], checkpoint={state.key: state.to_json()})
        self.ctx.counters.inc("windows")

    async def _disable(
        self, prm: PrmConfig, state: StreamState, exc: StreamRefused, today: date
    ) -> None:
        targets = self._prm_states(prm.prm) if exc.prm_wide else [state]
        retry = (today + timedelta(days=self.config.disabled_retry_days)).isoformat()
        marker = {
            "code": exc.code,
            "reason": str(exc),
            "since": today.isoformat(),
            "retry_after": retry,
        }
        if state.disabled:  # already refused through another stream of this PRM
            return
        for target in targets:
            target.disabled = dict(marker)
        scope = "PRM" if exc.prm_wide else f"{state.kind}/{state.direction}"
        self.log.warning(
            "enedis_stream_disabled",
            prm=prm.prm,
            scope=scope,
            code=exc.code,
            reason=str(exc),
            retry_after=retry,
        )
        point = anomaly_point(
            source="enedis",
            rule="STREAM_DISABLED",
            subject=prm.prm,
            at=int(self.clock.now()) * 1_000_000_000,
            detail=f"{scope}: {exc}",
        )
        await self.ctx.emit.points([point], checkpoint={t.key: t.to_json() for t in targets})
