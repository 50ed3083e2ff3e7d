"""The configuration: one JSON file (params.json) validated by pydantic.

`load_config()` finds the file (argument, ./params.json, /etc/chargeflux/params.json), parses
it, validates the engine's options and every `sources.<name>` block against that source's
own model (from the registry), and raises `ConfigError` naming the file and each offending
key. `masked()` is what `chargeflux check-config` prints: every secret as ``**********``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)

from daemon.checks.rules import SessionRulesConfig
from daemon.collector import HttpUrl, SourceConfig, SourcePlugin
from daemon.errors import ConfigError
from daemon.registry import SOURCES, plugin
from daemon.secrets import Secret

__all__ = [
    "DEFAULT_PATHS",
    "Config",
    "EmbeddedSinkConfig",
    "InfluxV1SinkConfig",
    "InfluxV2SinkConfig",
    "LogConfig",
    "OutboxConfig",
    "find_config",
    "installed_plugins",
    "load_config",
    "masked",
    "parse_config",
    "secret_values",
]

DEFAULT_PATHS = (Path("params.json"), Path("/etc/chargeflux/params.json"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LogConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class EmbeddedSinkConfig(_Strict):
    """Points kept in SQLite in the state directory (the default: no server needed)."""

    type: Literal["embedded"] = "embedded"
    path: Path | None = None


class _HttpSink(_Strict):
    url: HttpUrl = "http://127.0.0.1:8086"
    gzip: bool = False
    verify_tls: bool = True
    ca_file: Path | None = None
    timeout_s: float = Field(10.0, gt=0)


class InfluxV1SinkConfig(_HttpSink):
    """InfluxDB 1.x HTTP API (`/write`, `/query`), also accepted by 2.x and 3.x."""

    type: Literal["influxdb"]
    # an empty name would make InfluxDB answer 400 to every write: all dead-lettered
    database: str = Field(min_length=1)
    retention_policy: str | None = Field(None, min_length=1)
    username: str | None = None
    password: Secret | None = None
    precision: Literal["ns"] = "ns"
    create_database: bool = False

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> InfluxV1SinkConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: give both or neither")
        return self


class InfluxV2SinkConfig(_HttpSink):
    """InfluxDB 2.x API (`/api/v2/write`) through influxdb-client."""

    type: Literal["influxdb_v2"]
    token: Secret
    org: str = Field(min_length=1)
    bucket: str = Field(min_length=1)


SinkConfig = Annotated[
    EmbeddedSinkConfig | InfluxV1SinkConfig | InfluxV2SinkConfig, Field(discriminator="type")
]


class OutboxConfig(_Strict):
    batch_size: int = Field(10_000, ge=1, le=100_000)
    flush_interval_s: float = Field(1.0, gt=0)
    max_points: int = Field(50_000_000, ge=1000)
    retry_initial_s: float = Field(1.0, gt=0)
    retry_max_s: float = Field(300.0, gt=0)
    drain_timeout_s: float = Field(30.0, ge=0)
    synchronous: Literal["normal", "full"] = "full"


class ChecksConfig(_Strict):
    """`checks`: thresholds of the streaming checks."""

    sessions: SessionRulesConfig = SessionRulesConfig()


class Config(_Strict):
    """The whole params.json. `sources` holds each source's validated config model."""

    state_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("STATE_DIRECTORY", "state").split(":")[0])
    )
    log: LogConfig = LogConfig()
    sink: SinkConfig = EmbeddedSinkConfig()
    outbox: OutboxConfig = OutboxConfig()
    metrics_interval_s: float = Field(10.0, gt=0)
    checks: ChecksConfig = ChecksConfig()
    sources: dict[str, Any] = Field(default_factory=dict)
    _source: Path | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        """The file this config was loaded from (None for defaults or built in code)."""
        return self._source

    def enabled_sources(self) -> dict[str, SourceConfig]:
        return {name: cfg for name, cfg in self.sources.items() if cfg.enabled}


def installed_plugins() -> tuple[list[SourcePlugin], dict[str, str]]:
    """The plugins that load, and why each other registered source does not.

    One broken or half-installed source must not take the CLI or the demo down with it;
    configuring it still fails, with the reason, in `parse_config`."""
    found, broken = [], {}
    for name in SOURCES:
        try:
            found.append(plugin(name))
        except (ImportError, AttributeError) as exc:
            broken[name] = f"{type(exc).__name__}: {exc}"
    return found, broken


def find_config(path: Path | None) -> Path | None:
    """The config file to use: `path` if given, else the first default that exists."""
    if path is not None:
        return path
    return next((candidate for candidate in DEFAULT_PATHS if candidate.is_file()), None)


def _key_path(raw: Any, loc: tuple[Any, ...]) -> str:
    """The dotted key path of an error location, without pydantic's union tags (the
    `influxdb` in `sink.influxdb.database` is the value of `sink.type`, not a key)."""
    parts, node = [], raw
    for part in loc:
        if isinstance(node, dict) and part not in node and node.get("type") == part:
            continue
        parts.append(str(part))
        node = node.get(part) if isinstance(node, dict) else None
    return ".".join(parts) or "<root>"


def _format_errors(
    origin: str, exc: ValidationError, raw: Any, prefix: tuple[Any, ...] = ()
) -> list[str]:
    lines = []
    for error in exc.errors():
        where = ".".join([*map(str, prefix), _key_path(raw, error["loc"])])
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{origin}: {where}: {message}")
    return lines


def parse_config(raw: Any, origin: str = "<config>") -> Config:
    """Validate a parsed JSON document; `ConfigError` lists every offending key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: the top level must be a JSON object")
    problems: list[str] = []
    sources_raw = raw.get("sources", {})
    try:
        config = Config.model_validate({**raw, "sources": {}})
    except ValidationError as exc:
        problems += _format_errors(origin, exc, raw)
        config = None
    sources: dict[str, SourceConfig] = {}
    if not isinstance(sources_raw, dict):
        problems.append(f"{origin}: sources: must be an object of source name → settings")
        sources_raw = {}
    for name, block in sources_raw.items():
        if name not in SOURCES:
            problems.append(
                f"{origin}: sources.{name}: unknown source (known: {', '.join(sorted(SOURCES))})"
            )
            continue
        try:
            model = plugin(name).config_model
        except (ImportError, AttributeError) as exc:
            problems.append(f"{origin}: sources.{name}: cannot load the source: {exc}")
            continue
        try:
            sources[name] = model.model_validate(block)
        except ValidationError as exc:
            problems += _format_errors(origin, exc, block, ("sources", name))
    if problems or config is None:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    config.sources = sources
    return config


def load_config(path: Path | None = None) -> Config:
    """Load and validate the config file (defaults apply when no file exists)."""
    found = find_config(path)
    if found is None:
        return parse_config({}, "<defaults>")
    try:
        text = found.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{found}: cannot read: {exc.strerror}") from None
    try:
        raw = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{found}: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except _DuplicateKey as exc:
        raise ConfigError(f"{found}: key {exc.args[0]!r} appears twice in one object") from None
    config = parse_config(raw, str(found))
    config._source = found
    return config


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects as dicts, refusing a repeated key (json.loads would keep the last)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def secret_values(config: Config) -> list[str]:
    """Every resolved secret in the config (engine and sources), for the log redactor."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(config)
    return found


def masked(config: Config) -> dict[str, Any]:
    """The effective config as JSON-ready data with every secret shown as ``**********``."""
    data = config.model_dump(mode="json")
    data["sources"] = {name: cfg.model_dump(mode="json") for name, cfg in config.sources.items()}
    return data
