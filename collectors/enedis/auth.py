"""Access tokens: OAuth2 client credentials (Data Connect) or a fixed bearer (Conso API).

`OAuthToken` logs in at `POST /oauth2/v3/token` (form: grant_type=client_credentials,
client_id, client_secret) and logs in again before the token expires (`expires_in`, 12600 s
at Enedis, minus a margin) or when the API answers 401. One login at a time.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import aiohttp
from pydantic import SecretStr

from collectors.enedis.models import TokenResponse
from collectors.enedis.quota import Clock
from daemon.errors import AuthError
from daemon.http import request_json
from daemon.metrics import Counters

__all__ = ["OAuthToken", "StaticToken", "TokenSource"]


class TokenSource(Protocol):
    async def header(self) -> str:
        """The Authorization header value to send."""
        ...

    def invalidate(self) -> None:
        """Forget the current token (the API refused it)."""
        ...


class StaticToken:
    """A bearer token from the config (Conso API, self-hosted v5 proxies)."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    async def header(self) -> str:
        return f"Bearer {self._token.get_secret_value()}"

    def invalidate(self) -> None:
        """A fixed token cannot be renewed: a second 401 surfaces as AuthError."""


class OAuthToken:
    """Client-credentials token, renewed `margin_s` before it expires."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        client_id: str,
        client_secret: SecretStr,
        clock: Clock,
        counters: Counters,
        *,
        timeout_s: float = 30.0,
        margin_s: float = 300.0,
    ) -> None:
        self._http = http
        self._url = url
        self._client_id = client_id
        self._secret = client_secret
        self._clock = clock
        self._counters = counters
        self._timeout = timeout_s
        self._margin = margin_s
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.logins = 0

    async def header(self) -> str:
        async with self._lock:
            if self._token is None or self._clock.now() >= self._expires_at:
                await self._login()
            assert self._token is not None
            return f"Bearer {self._token}"

    def invalidate(self) -> None:
        self._token = None

    async def _login(self) -> None:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._secret.get_secret_value(),
        }
        try:
            answer: TokenResponse = await request_json(
                self._http,
                "POST",
                self._url,
                model=TokenResponse,
                data=form,
                timeout=self._timeout,
            )
        except AuthError as exc:
            message = f"Enedis login refused for client_id {self._client_id}: {exc}"
            raise AuthError(message) from None
        self.logins += 1
        self._counters.inc("logins")
        self._token = answer.access_token
        lifetime = answer.expires_in
        self._expires_at = self._clock.now() + max(lifetime - self._margin, lifetime / 2)
