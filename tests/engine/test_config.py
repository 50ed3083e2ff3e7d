"""Configuration: errors that name the file and key, secrets from every source, masking."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from daemon.cli import main, secrets_of
from daemon.config import load_config
from daemon.errors import ConfigError
from daemon.logging import configure_logging

ENV_SECRET = "env-s3cret-Value"
FILE_SECRET = "file-s3cret-Value"
CREDENTIAL_SECRET = "cred-s3cret-Value"


def write(path: Path, raw: Any) -> Path:
    path.write_text(raw if isinstance(raw, str) else json.dumps(raw, indent=2), encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def test_errors_name_the_file_and_each_key_path(tmp_path: Path) -> None:
    """Every invalid key is reported with the file name and its dotted path."""
    path = write(
        tmp_path / "params.json",
        {
            "sink": {"type": "influxdb", "url": "ftp://nope"},
            "outbox": {"batch_size": 0},
            "sources": {"counter": {"per_run": "many"}},
        },
    )
    message = config_error(path)
    for key in ("sink.database", "sink.url", "outbox.batch_size", "sources.counter.per_run"):
        assert f"{path}: {key}: " in message
    assert "must start with http:// or https://" in message


def test_unknown_keys_are_refused_everywhere(tmp_path: Path) -> None:
    """Typos are errors at the top level, in the sink, in a source and as a source name."""
    path = write(
        tmp_path / "params.json",
        {
            "source": "x",
            "outbx": {},
            "sink": {"type": "embedded", "pth": "x"},
            "sources": {"counter": {"per_runs": 3}, "countr": {}},
        },
    )
    message = config_error(path)
    for key in ("source", "outbx", "sink.pth", "sources.counter.per_runs"):
        assert f"{path}: {key}: Extra inputs are not permitted" in message
    assert f"{path}: sources.countr: unknown source" in message


def test_sink_settings_that_would_lose_data_are_refused(tmp_path: Path) -> None:
    """An empty database name (every write a 400) and half a credential pair are errors."""
    path = write(
        tmp_path / "params.json", {"sink": {"type": "influxdb", "database": "", "password": "p"}}
    )
    message = config_error(path)
    assert f"{path}: sink.database: String should have at least 1 character" in message
    path = write(
        tmp_path / "params.json", {"sink": {"type": "influxdb", "database": "d", "password": "p"}}
    )
    assert f"{path}: sink: username and password go together" in config_error(path)


def test_bad_json_reports_line_and_column(tmp_path: Path) -> None:
    """A syntax error names the file, the line and the column."""
    path = write(tmp_path / "params.json", '{\n  "log": {"level": "info",}\n}')
    assert config_error(path).startswith(f"{path}: line 2 column 27: ")


def test_a_repeated_key_is_refused(tmp_path: Path) -> None:
    """A key given twice in one object is an error instead of silently keeping the last."""
    path = write(tmp_path / "params.json", '{"sink": {"type": "embedded"}, "sink": {}}')
    assert "'sink' appears twice" in config_error(path)


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    """--config naming a missing file is a ConfigError naming it."""
    assert f"{tmp_path / 'nope.json'}: cannot read" in config_error(tmp_path / "nope.json")


@pytest.fixture
def secret_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An env variable, a secret file and a credential directory holding the three secrets."""
    monkeypatch.setenv("CF_TEST_PASSWORD", ENV_SECRET)
    write(tmp_path / "token.txt", FILE_SECRET + "\n")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    write(credentials / "v2_token", CREDENTIAL_SECRET + "\r\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    return tmp_path


def test_secrets_come_from_literal_env_file_and_credential(secret_sources: Path) -> None:
    """Each secret form resolves to its value, without the file's trailing newline."""
    base = {"type": "influxdb", "url": "http://127.0.0.1:1", "database": "d", "username": "u"}
    cases = {
        "literal": ({**base, "password": "lit-s3cret"}, "lit-s3cret"),
        "env": ({**base, "password": {"env": "CF_TEST_PASSWORD"}}, ENV_SECRET),
        "file": ({**base, "password": {"file": str(secret_sources / "token.txt")}}, FILE_SECRET),
        "credential": (
            {"type": "influxdb_v2", "token": {"credential": "v2_token"}, "org": "o", "bucket": "b"},
            CREDENTIAL_SECRET,
        ),
    }
    for name, (sink, value) in cases.items():
        config = load_config(write(secret_sources / f"{name}.json", {"sink": sink}))
        secret = getattr(config.sink, "password", None) or config.sink.token  # type: ignore[union-attr]
        assert secret.get_secret_value() == value, name
        assert value not in repr(config), name


def test_secret_errors_name_the_reference_never_a_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing variable, file or credential directory is named in the error."""
    monkeypatch.delenv("CF_TEST_UNSET", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    sink = {"type": "influxdb", "database": "d", "username": "u"}
    cases = {
        "env": ({"env": "CF_TEST_UNSET"}, "environment variable CF_TEST_UNSET is not set"),
        "file": ({"file": str(tmp_path / "missing")}, f"cannot read secret file {tmp_path}"),
        "credential": ({"credential": "pw"}, "credential 'pw': CREDENTIALS_DIRECTORY is not set"),
        "shape": ({"vault": "x"}, "unknown secret source 'vault'"),
        "not a name": ({"env": 123}, "the 'env' of a secret must be a non-empty string"),
        "a path": ({"credential": "../x"}, "credential '../x': a credential name, not a path"),
    }
    for name, (reference, expected) in cases.items():
        path = write(
            tmp_path / f"{name.replace(' ', '_')}.json", {"sink": {**sink, "password": reference}}
        )
        message = config_error(path)
        assert f"{path}: sink.password: {expected}" in message, message


def test_check_config_prints_secrets_masked(
    secret_sources: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config prints the effective config with every secret (engine and source) masked."""
    path = write(
        secret_sources / "params.json",
        {
            "sink": {
                "type": "influxdb",
                "database": "d",
                "username": "u",
                "password": {"env": "CF_TEST_PASSWORD"},
            },
            "sources": {"counter": {"token": {"file": str(secret_sources / "token.txt")}}},
        },
    )
    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert ENV_SECRET not in out and FILE_SECRET not in out
    header, _, body = out.partition("\n")
    assert header == f"# {path}"
    printed = json.loads(body)
    assert printed["sink"]["password"] == "**********"
    assert printed["sources"]["counter"]["token"] == "**********"
    assert printed["sources"]["counter"]["per_run"] == 10  # defaults are shown too


def test_check_config_reports_an_invalid_file_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid file makes check-config exit 2 with the file and key on stderr."""
    path = write(tmp_path / "params.json", {"outbox": {"batch_size": "lots"}})
    assert main(["check-config", "--config", str(path)]) == 2
    assert f"{path}: outbox.batch_size:" in capsys.readouterr().err


def test_every_resolved_secret_is_known_to_the_redactor(secret_sources: Path) -> None:
    """secrets_of finds the sink's and every source's secrets."""
    path = write(
        secret_sources / "params.json",
        {
            "sink": {
                "type": "influxdb",
                "database": "d",
                "username": "u",
                "password": {"env": "CF_TEST_PASSWORD"},
            },
            "sources": {"counter": {"token": {"credential": "v2_token"}}},
        },
    )
    assert sorted(secrets_of(load_config(path))) == sorted([ENV_SECRET, CREDENTIAL_SECRET])


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """JSON logging into a buffer, with the previous structlog and logging set-up restored."""
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield stream
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


def test_the_redactor_masks_a_secret_inside_an_exception(log_stream: io.StringIO) -> None:
    """A secret in an exception's text, its traceback or a library's log line is masked."""
    configure_logging("info", "json", [ENV_SECRET, "abc"], stream=log_stream)
    log = structlog.get_logger("test")
    try:
        raise RuntimeError(f"login refused for password={ENV_SECRET}")
    except RuntimeError as exc:
        log.error("sink_failed", error=str(exc), cause=exc, exc_info=True)
    logging.getLogger("apscheduler").warning("job failed: %s", ENV_SECRET)
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    assert ENV_SECRET not in log_stream.getvalue()
    assert lines[0]["error"] == "login refused for password=**********"
    assert lines[0]["cause"] == "login refused for password=**********"
    assert "RuntimeError: login refused for password=**********" in lines[0]["exception"]
    assert lines[1]["event"] == "job failed: **********"
    assert lines[1]["logger"] == "apscheduler"
