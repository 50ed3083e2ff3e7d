"""The QualiCharge API client against the simulated API, and the simulator's strictness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from collectors.qualicharge.api import StatusClient
from collectors.qualicharge.config import QualiChargeApiConfig
from collectors.qualicharge.status_api import StatusApi
from daemon.errors import AuthError, DataError, UpstreamError
from daemon.metrics import Counters
from tests.qualicharge.conftest import Clock


def client_for(
    api: StatusApi, base_url: str, http: aiohttp.ClientSession, **overrides: object
) -> StatusClient:
    block = {
        "base_url": base_url,
        "username": api.username,
        "password": api.password,
        "retries": 3,
        "retry_max_wait_s": 0.01,
        **overrides,
    }
    return StatusClient(http, QualiChargeApiConfig.model_validate(block), Counters("qc"), api.clock)


async def test_statuses_after_login(status_api, http) -> None:
    """The client logs in with the password form and reads every active charge point."""
    api, url = status_api
    client = client_for(api, url, http)
    statuses = await client.statuses(None)
    assert {s.id_pdc_itinerance for s in statuses} == set(api.statuses)
    assert api.logins == 1
    assert all(s.horodatage.tzinfo is not None for s in statuses)


async def test_from_station_and_pdc_filters(status_api, http) -> None:
    """`from` keeps only newer statuses; station and pdc filters are sent as repeated params."""
    api, url = status_api
    client = client_for(api, url, http)
    before = datetime.fromtimestamp(api.clock(), UTC) - timedelta(seconds=1)
    api.clock.now += 10  # type: ignore[attr-defined]
    changed = set(api.advance(3))
    assert {s.id_pdc_itinerance for s in await client.statuses(before)} == changed
    pdc = api.fleet.pdcs[0]
    both = await client.statuses(None, stations=[pdc.id_station_itinerance], pdcs=["FRXXXE1"])
    assert {s.id_pdc_itinerance for s in both} <= {p.id_pdc_itinerance for p in api.fleet.pdcs}
    assert api.requests[-1] == {"station": [pdc.id_station_itinerance], "pdc": ["FRXXXE1"]}


async def test_long_id_lists_are_split(status_api, http) -> None:
    """More ids than `ids_per_request` make several requests, merged into one answer."""
    api, url = status_api
    client = client_for(api, url, http, ids_per_request=4)
    pdcs = sorted(api.statuses)[:10]
    found = await client.statuses(None, pdcs=pdcs)
    assert {s.id_pdc_itinerance for s in found} == set(pdcs)
    assert [len(r["pdc"]) for r in api.requests] == [4, 4, 2]


async def test_relogin_before_the_token_expires(status_api, http) -> None:
    """The client logs in again once the token is within the margin of its 30-minute life."""
    api, url = status_api
    client = client_for(api, url, http, relogin_margin_s=120)
    await client.statuses(None)
    api.clock.now += 1800 - 121  # type: ignore[attr-defined]
    await client.statuses(None)
    assert api.logins == 1
    api.clock.now += 2  # type: ignore[attr-defined]
    await client.statuses(None)
    assert api.logins == 2


async def test_expired_token_is_replaced_once(status_api, http) -> None:
    """A 401 on a token the client thought valid (its clock is late) triggers one re-login."""
    api, url = status_api
    client_clock = Clock(api.clock())
    client = StatusClient(
        http,
        QualiChargeApiConfig(base_url=url, username=api.username, password=api.password, retries=1),
        Counters("qc"),
        client_clock,
    )
    await client.statuses(None)
    api.clock.now += 3600  # type: ignore[attr-defined]  # the server's clock runs ahead
    assert await client.statuses(None)
    assert api.logins == 2


async def test_wrong_password_is_an_auth_error(status_api, http) -> None:
    """Refused credentials raise AuthError without the password in the message."""
    api, url = status_api
    client = client_for(api, url, http, password="not-it-x9")
    with pytest.raises(AuthError) as caught:
        await client.statuses(None)
    assert "Wrong login or password" in str(caught.value)
    assert "not-it-x9" not in str(caught.value)


async def test_rate_limit_waits_for_retry_after(status_api, http) -> None:
    """A 429 with Retry-After is retried after the wait the server asked for."""
    api, url = status_api
    client = client_for(api, url, http)
    api.fail_next(429, retry_after=0.01)
    assert await client.statuses(None)
    assert client._counters["retries"] == 1


async def test_server_errors_retry_then_fail(status_api, http) -> None:
    """5xx answers are retried; when they persist the poll fails with UpstreamError."""
    api, url = status_api
    client = client_for(api, url, http)
    api.fail_next(500, times=1)
    assert await client.statuses(None)
    api.fail_next(503, times=5)
    with pytest.raises(UpstreamError):
        await client.statuses(None)


async def test_malformed_json_and_wrong_types_are_data_errors(status_api, http) -> None:
    """A body that is not JSON, or a status with an unknown state, is a DataError."""
    api, url = status_api
    client = client_for(api, url, http)
    api.malformed_next()
    with pytest.raises(DataError, match="not JSON"):
        await client.statuses(None)
    first = sorted(api.statuses)[0]
    api.statuses[first] = {**api.statuses[first], "etat_pdc": "broken"}
    with pytest.raises(DataError, match="etat_pdc"):
        await client.statuses(None)


async def test_server_down_is_upstream_error(http) -> None:
    """A refused connection is an UpstreamError after the retries."""
    config = QualiChargeApiConfig(
        base_url="http://127.0.0.1:9", username="u", password="p", retries=2, retry_max_wait_s=0
    )
    with pytest.raises(UpstreamError):
        await StatusClient(http, config, Counters("qc")).statuses(None)


@pytest.mark.parametrize(
    ("query", "status", "needle"),
    [
        ("", 401, "Not authenticated"),
        ("?from=yesterday", 422, "datetime_from_date_parsing"),
        ("?from=2999-01-01T00:00:00Z", 422, "datetime_past"),
        ("?pdc=bad id", 422, "string_pattern_mismatch"),
    ],
)
async def test_simulator_rejects_bad_requests(status_api, http, query, status, needle) -> None:
    """The simulated API refuses what the real one refuses, with FastAPI's shapes."""
    api, url = status_api
    headers = {} if status == 401 else {"Authorization": f"Bearer {api.token('cpo-demo')}"}
    async with http.get(f"{url}/api/v1/dynamique/status/{query}", headers=headers) as response:
        assert response.status == status
        assert needle in await response.text()


async def test_simulator_login_needs_a_form(status_api, http) -> None:
    """Login without the form fields is a 422; a forged token is refused with 401."""
    api, url = status_api
    async with http.post(f"{url}/api/v1/auth/token", json={"username": "x"}) as response:
        assert response.status == 422
    async with http.post(f"{url}/api/v1/auth/token", data={"username": api.username}) as response:
        assert response.status == 422
        assert "password" in await response.text()
    forged = api.token("cpo-demo")[:-4] + "AAAA"
    async with http.get(
        f"{url}/api/v1/dynamique/status/", headers={"Authorization": f"Bearer {forged}"}
    ) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
