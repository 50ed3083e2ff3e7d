"""The `sources.bluecurrent` config block.

Only `api_token` is required (a literal, or {"env": NAME}, {"file": PATH},
{"credential": NAME}). `sites` tells, per charge point (EVSE id), which station,
operational unit, SIREN and nominal power its transactions belong to (for the session checks
and the CARBURE rollup); `default_site` fills what a charge point's entry leaves out.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from daemon.collector import SourceConfig
from daemon.secrets import Secret

__all__ = ["BlueCurrentConfig", "Site", "SiteConfig"]


class SiteConfig(BaseModel):
    """Where a charge point's sessions belong; unset keys fall back to `default_site`."""

    model_config = ConfigDict(extra="forbid")

    station: str | None = None
    operational_unit: str | None = None
    siren: str | None = None
    max_power_kw: float | None = Field(default=None, gt=0)


class Site(BaseModel):
    """A resolved site: every key set."""

    station: str
    operational_unit: str
    siren: str
    max_power_kw: float


class BlueCurrentConfig(SourceConfig):
    """BlueCurrent: live charge-point status over the websocket, transactions over REST."""

    api_token: Secret
    ws_url: str = "wss://motown.bluecurrent.nl/haserver"
    api_url: str = "https://api.bluecurrent.nl/app/bc_api/api/v2.0"
    evse_ids: list[str] = Field(
        default_factory=list, description="charge points to follow; empty = every one"
    )
    sites: dict[str, SiteConfig] = Field(default_factory=dict)
    default_site: SiteConfig = Field(default_factory=SiteConfig)
    transactions_every_s: float = Field(default=900.0, ge=30)
    snapshot_timeout_s: float = Field(default=30.0, gt=0)
    request_timeout_s: float = Field(default=15.0, gt=0)
    max_logins: int = Field(default=3, ge=1)
    login_window_s: float = Field(default=300.0, gt=0)
    backoff_initial_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)
    stable_after_s: float = Field(default=60.0, gt=0)

    def site(self, evse_id: str) -> Site:
        """The resolved site of a charge point (station defaults to the EVSE id)."""
        own = self.sites.get(evse_id, SiteConfig())
        base = self.default_site
        return Site(
            station=own.station or base.station or evse_id,
            operational_unit=own.operational_unit or base.operational_unit or "",
            siren=own.siren or base.siren or "",
            max_power_kw=own.max_power_kw or base.max_power_kw or 22.0,
        )
