"""The Masterdata simulator is strict the way the real API is."""

from __future__ import annotations

import base64

import aiohttp
import pytest

from collectors.econnect.simulator import MasterdataSimulator

URL = "{base}/masterdata/cpos/{bp}/chargingstations"


@pytest.fixture
def url(simulator: MasterdataSimulator) -> str:
    return URL.format(base=simulator.base_url, bp=simulator.business_partner)


def _auth(sim: MasterdataSimulator, password: str | None = None) -> dict[str, str]:
    token = base64.b64encode(f"{sim.username}:{password or sim.password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_missing_and_wrong_credentials_are_401(
    simulator: MasterdataSimulator, url: str, http: aiohttp.ClientSession
) -> None:
    """No Authorization header, or a wrong password, gets 401 with a Basic challenge."""
    params = {"page": "0", "size": "100"}
    async with http.get(url, params=params) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    async with http.get(url, params=params, headers=_auth(simulator, "bad")) as response:
        assert response.status == 401
    assert simulator.hits == {}


@pytest.mark.parametrize(
    "params",
    [
        {"size": "100"},
        {"page": "0"},
        {"page": "-1", "size": "100"},
        {"page": "x", "size": "100"},
        {"page": "0", "size": "101"},
        {"page": "0", "size": "0"},
        {"page": "0", "size": "100", "sort": "id"},
    ],
)
async def test_bad_paging_parameters_are_400(
    simulator: MasterdataSimulator, url: str, http: aiohttp.ClientSession, params: dict[str, str]
) -> None:
    """Missing, negative, non-integer or too large page/size, or unknown params, get 400."""
    async with http.get(url, params=params, headers=_auth(simulator)) as response:
        assert response.status == 400
        body = await response.json()
    assert body["status"] == 400 and body["message"]


async def test_page_shape(
    simulator: MasterdataSimulator, url: str, http: aiohttp.ClientSession
) -> None:
    """A page is Spring-style: content plus number/size/totalElements/totalPages/last."""
    async with http.get(url, params={"page": "3", "size": "100"}, headers=_auth(simulator)) as r:
        body = await r.json()
    assert len(body["content"]) == 20
    assert (body["number"], body["totalElements"], body["totalPages"]) == (3, 320, 4)
    assert body["last"] is True and body["empty"] is False
    async with http.get(url, params={"page": "4", "size": "100"}, headers=_auth(simulator)) as r:
        assert (await r.json())["content"] == []
