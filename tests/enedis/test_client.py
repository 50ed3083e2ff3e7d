"""The client against the simulator through real HTTP: modes, named errors, quota, auth."""

from __future__ import annotations

import json
import socket
from datetime import date

import aiohttp
import pytest

from collectors.enedis.client import (
    BeforeActivation,
    EnedisApiError,
    EnedisClient,
    NoData,
    NotSubscribed,
    StreamRefused,
)
from collectors.enedis.quota import SimulatedClock
from collectors.enedis.sim_data import Meter, sandbox_meters
from collectors.enedis.simulator import EnedisSimulator, Fault
from daemon.errors import AuthError, DataError, UpstreamError
from tests.enedis.harness import Harness, config

FULL = "22516914714270"
CONSO_TOKEN = "demo-conso-token"
MODES = {
    "data_connect": {},
    "conso_v2": {
        "mode": "conso_api",
        "token": CONSO_TOKEN,
        "client_id": None,
        "client_secret": None,
    },
    "conso_v5": {
        "mode": "conso_api",
        "conso_api_version": "v5",
        "token": CONSO_TOKEN,
        "client_id": None,
        "client_secret": None,
    },
    "metering_v5": {"mode": "metering_v5"},
}


def _client(harness: Harness, sim: EnedisSimulator, **extra: object) -> EnedisClient:
    return harness.collector(config(sim.url, [{"prm": FULL}], **extra)).client


@pytest.mark.parametrize("kind", ["load_curve", "daily", "max_power"])
async def test_every_mode_gives_the_same_series(
    harness: Harness, sim: EnedisSimulator, kind: str
) -> None:
    """Data Connect, Conso API v2 and v5, and metering v5 parse into identical series."""
    first, end = date(2025, 10, 24), date(2025, 10, 28)
    results = []
    for extra in MODES.values():
        series, _ = await _client(harness, sim, **extra).fetch(
            FULL, kind, "consumption", first, end
        )
        results.append(series.samples)
    assert results[0] and all(r == results[0] for r in results)
    if kind == "load_curve":
        assert len(results[0]) == 4 * 48 + 2  # the fall-back day has 50 half-hours


@pytest.mark.parametrize("mode", ["data_connect", "conso_v2", "conso_v5"])
@pytest.mark.parametrize(
    ("prm", "kind", "direction", "first", "error", "code"),
    [
        ("26584978546985", "daily", "consumption", date(2026, 1, 1), StreamRefused, "ADAM-DC-0008"),
        (
            "32320647321714",
            "load_curve",
            "consumption",
            date(2026, 1, 1),
            StreamRefused,
            "ADAM-ERR0075",
        ),
        ("24880057139941", "daily", "consumption", date(2026, 1, 1), StreamRefused, "ADAM-ERR0069"),
        ("99999999999999", "daily", "consumption", date(2026, 1, 1), StreamRefused, "ADAM-DC-0007"),
        (
            "11453290002823",
            "daily",
            "consumption",
            date(2019, 8, 1),
            BeforeActivation,
            "ADAM-ERR0123",
        ),
        ("42900589957123", "daily", "consumption", date(2026, 1, 7), NoData, "no_data_found"),
    ],
)
async def test_named_errors(
    harness: Harness,
    clock: SimulatedClock,
    mode: str,
    prm: str,
    kind: str,
    direction: str,
    first: date,
    error: type[Exception],
    code: str,
) -> None:
    """Each Enedis error name maps to its exception, also through the Conso API wrapper."""
    meters = [*sandbox_meters(), Meter("99999999999999", moved=True)]
    simulator = EnedisSimulator(clock, meters=meters, per_hour=10**6)
    async with simulator.running():
        client = _client(harness, simulator, **MODES[mode])
        end = first.replace(day=first.day + 1)
        if first.year == 2019:  # the history limit: ask an activation-bound window in range
            simulator.meters[prm] = Meter(prm, activation=date(2025, 6, 10))
            first, end = date(2025, 6, 5), date(2025, 6, 12)
        with pytest.raises(error) as caught:
            await client.fetch(prm, kind, direction, first, end)  # type: ignore[arg-type]
    assert isinstance(caught.value, EnedisApiError) and caught.value.code == code
    if code in ("ADAM-DC-0008", "ADAM-DC-0007"):
        assert caught.value.prm_wide  # type: ignore[attr-defined]


async def test_throttled_data_connect_waits_until_next_access_time(
    harness: Harness, clock: SimulatedClock
) -> None:
    """A 429 with nextAccessTime pauses the account until then, and the request succeeds."""
    simulator = EnedisSimulator(clock, per_second=100, per_hour=3)
    async with simulator.running():
        client = _client(harness, simulator, requests_per_hour=100)
        start = clock.now()
        for day in range(1, 6):
            await client.fetch(
                FULL, "daily", "consumption", date(2026, 1, day), date(2026, 1, day + 1)
            )
    assert simulator.status_counts[429] >= 1
    assert simulator.status_counts[200] == 5
    assert clock.now() - start >= 3600  # the 4th request had to wait for the hour to pass


async def test_conso_api_429_honours_retry_after(
    harness: Harness, sim: EnedisSimulator, clock: SimulatedClock
) -> None:
    """A Conso API 429 with Retry-After is waited out on the account's clock, then retried."""
    body = json.dumps({"status": 429, "message": "Too many requests", "error": "rate_limited"})
    sim.inject(Fault(429, body, {"Retry-After": "42"}))
    client = _client(harness, sim, **MODES["conso_v2"])
    start = clock.now()
    series, _ = await client.fetch(FULL, "daily", "consumption", date(2026, 1, 1), date(2026, 1, 3))
    assert len(series.samples) == 2
    assert clock.now() - start >= 42
    assert harness.counters["throttled"] == 1


async def test_expired_token_relogs_once(harness: Harness, sim: EnedisSimulator) -> None:
    """A 401 on a revoked token triggers one new login and the request is sent again."""
    client = _client(harness, sim)
    await client.fetch(FULL, "daily", "consumption", date(2026, 1, 1), date(2026, 1, 2))
    sim.revoke_tokens()
    series, _ = await client.fetch(FULL, "daily", "consumption", date(2026, 1, 2), date(2026, 1, 3))
    assert len(series.samples) == 1
    assert sim.logins == 2


async def test_token_is_renewed_before_it_expires(
    harness: Harness, sim: EnedisSimulator, clock: SimulatedClock
) -> None:
    """Close to `expires_in` the client logs in again instead of meeting a 401."""
    client = _client(harness, sim)
    await client.fetch(FULL, "daily", "consumption", date(2026, 1, 1), date(2026, 1, 2))
    clock.advance(12600 - 120)
    await client.fetch(FULL, "daily", "consumption", date(2026, 1, 2), date(2026, 1, 3))
    assert sim.logins == 2
    assert sim.status_counts[401] == 0


async def test_bad_credentials_are_an_auth_error(harness: Harness, sim: EnedisSimulator) -> None:
    """A refused login surfaces as AuthError naming the client id, not the secret."""
    client = _client(harness, sim, client_secret="wrong-secret")
    with pytest.raises(AuthError) as caught:
        await client.fetch(FULL, "daily", "consumption", date(2026, 1, 1), date(2026, 1, 2))
    assert "demo-client" in str(caught.value) and "wrong-secret" not in str(caught.value)


async def test_not_subscribed_is_a_clear_auth_error(
    harness: Harness, clock: SimulatedClock
) -> None:
    """403 900908 says the application lacks the API subscription."""
    simulator = EnedisSimulator(clock, unsubscribed={"demo-client"})
    async with simulator.running():
        with pytest.raises(NotSubscribed, match="not subscribed"):
            await _client(harness, simulator).fetch(
                FULL, "daily", "consumption", date(2026, 1, 1), date(2026, 1, 2)
            )


async def test_technical_errors_are_retried(harness: Harness, sim: EnedisSimulator) -> None:
    """500 technical_error is retried with backoff and then succeeds."""
    body = json.dumps({"error": "technical_error", "error_description": "A technical error"})
    sim.inject(Fault(500, body), Fault(503, body))
    client = _client(harness, sim)
    series, _ = await client.fetch(FULL, "daily", "consumption", date(2026, 1, 1), date(2026, 1, 2))
    assert len(series.samples) == 1 and harness.counters["retries"] == 2


async def test_persistent_5xx_gives_up(harness: Harness, sim: EnedisSimulator) -> None:
    """After the configured attempts a 5xx becomes UpstreamError."""
    sim.inject(*[Fault(500, "{}") for _ in range(3)])
    with pytest.raises(UpstreamError):
        await _client(harness, sim, retry_attempts=3).fetch(
            FULL, "daily", "consumption", date(2026, 1, 1), date(2026, 1, 2)
        )


@pytest.mark.parametrize(
    "body",
    [
        '{"idPrm": "22516914714270", "grandeur": [',
        json.dumps(
            {
                "idPrm": FULL,
                "grandeur": [
                    {"grandeurMetier": "CONS", "points": [{"v": {"value": 3}, "d": "2026-01-01"}]}
                ],
            }
        ),
        json.dumps({"idPrm": FULL, "grandeur": {"CONS": []}}),
        json.dumps(
            {
                "idPrm": FULL,
                "grandeur": [{"grandeurMetier": "CONS", "points": [{"v": "12", "d": "yesterday"}]}],
            }
        ),
    ],
    ids=["malformed-json", "value-object", "grandeur-object", "bad-date"],
)
async def test_unreadable_answers_are_data_errors(
    harness: Harness, sim: EnedisSimulator, body: str
) -> None:
    """Malformed JSON and wrong types raise DataError instead of producing points."""
    sim.inject(Fault(200, body))
    with pytest.raises(DataError):
        await _client(harness, sim).fetch(
            FULL, "daily", "consumption", date(2026, 1, 1), date(2026, 1, 2)
        )


async def test_server_down_is_an_upstream_error(harness: Harness) -> None:
    """A refused connection is retried, then reported as UpstreamError."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = harness.collector(
        config(
            f"http://127.0.0.1:{port}",
            [{"prm": FULL}],
            retry_attempts=2,
            token="t",
            mode="metering_v5",
        )
    ).client
    with pytest.raises(UpstreamError):
        await client.fetch(FULL, "daily", "consumption", date(2026, 1, 1), date(2026, 1, 2))


async def test_simulator_is_strict(
    sim: EnedisSimulator, http: aiohttp.ClientSession, clock: SimulatedClock
) -> None:
    """The simulator refuses what Enedis refuses: bad tokens, dates, windows, missing params."""
    async with http.post(
        f"{sim.url}/oauth2/v3/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "demo-client",
            "client_secret": "demo-secret",
        },
    ) as answer:
        token = (await answer.json())["access_token"]
    base = f"{sim.url}/mesure_synchrone_auto/v2/"
    auth = {"Authorization": f"Bearer {token}"}
    good = {"pointId": FULL, "dateDebut": "2026-01-01", "dateFin": "2026-01-08"}
    cases = [
        ("courbe_de_charge_consommation", good, {}, 401),
        ("courbe_de_charge_consommation", good | {"dateFin": "2026-01-09"}, auth, 400),
        ("courbe_de_charge_consommation", good | {"dateDebut": "2026-1-1"}, auth, 400),
        ("courbe_de_charge_consommation", {"pointId": FULL}, auth, 400),
        ("courbe_de_charge_consommation", good | {"pointId": "123"}, auth, 400),
        (
            "courbe_de_charge_consommation",
            good | {"dateDebut": "2024-09-01", "dateFin": "2024-09-02"},
            auth,
            400,
        ),
        ("consommation_quotidienne", good | {"dateFin": "2026-10-21"}, auth, 400),
        (
            "courbe_de_charge_consommation",  # 24 months + 15 days back: the oldest day kept
            good | {"dateDebut": "2024-10-05", "dateFin": "2024-10-12"},
            auth,
            200,
        ),
        (
            "courbe_de_charge_consommation",
            good | {"dateDebut": "2024-10-04", "dateFin": "2024-10-11"},
            auth,
            400,
        ),
        (
            "consommation_quotidienne",
            good | {"dateDebut": "2023-10-05", "dateFin": "2024-10-04"},
            auth,
            200,
        ),
        (
            "consommation_quotidienne",
            good | {"dateDebut": "2023-10-04", "dateFin": "2024-10-03"},
            auth,
            400,
        ),
        (
            "consommation_quotidienne",
            good | {"dateDebut": "2025-01-01", "dateFin": "2026-01-02"},
            auth,
            400,
        ),
        ("puissance_conso_max_quotidienne", good, auth, 400),
        (
            "puissance_conso_max_quotidienne",
            good | {"mesuresPas": "P1D", "grandeurPhysique": "PMA"},
            auth,
            200,
        ),
        ("courbe_de_charge_consommation", good, auth, 200),
    ]
    for name, params, headers, status in cases:
        clock.advance(1)  # stay inside the 5/s quota
        async with http.get(base + name, params=params, headers=headers) as answer:
            assert answer.status == status, (name, params)
            body = await answer.json()
            if status == 400:
                assert body["error"] == "invalid_request" and body["error_description"]
    async with http.post(f"{sim.url}/oauth2/v3/token", data={"grant_type": "password"}) as bad:
        assert bad.status == 400
