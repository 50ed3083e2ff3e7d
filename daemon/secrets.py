"""Secret values from the config file, an environment variable or a credential file.

A secret option accepts a literal string, or a reference resolved at load time:

    "password": "s3cret"                        literal (discouraged outside tests)
    "password": {"env": "INFLUX_PASSWORD"}      environment variable
    "password": {"file": "/etc/chargeflux/pw"}  file content, trailing newline stripped
    "password": {"credential": "influx_pw"}     systemd LoadCredential= ($CREDENTIALS_DIRECTORY)

Resolved values are `pydantic.SecretStr`: they print as ``**********`` everywhere (repr,
logs, `check-config`). Error messages name the variable or file, never the value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr

__all__ = ["Secret", "resolve_secret"]


def resolve_secret(value: Any) -> Any:
    """Turn a literal or a {"env"|"file"|"credential": ...} reference into a SecretStr."""
    if isinstance(value, SecretStr) or value is None:
        return value
    if isinstance(value, str):
        return SecretStr(value)
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError(
            'a secret is a string or one of {"env": NAME}, {"file": PATH}, {"credential": NAME}'
        )
    ((kind, name),) = value.items()
    if not isinstance(name, str) or not name:
        raise ValueError(f"the {kind!r} of a secret must be a non-empty string")
    if kind == "env":
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return SecretStr(os.environ[name])
    if kind == "file":
        return SecretStr(_read(Path(name)))
    if kind == "credential":
        if "/" in name or name in (".", ".."):
            raise ValueError(f"credential {name!r}: a credential name, not a path")
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise ValueError(f"credential {name!r}: CREDENTIALS_DIRECTORY is not set")
        return SecretStr(_read(Path(directory) / name))
    raise ValueError(f"unknown secret source {kind!r} (use env, file or credential)")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None


Secret = Annotated[SecretStr, BeforeValidator(resolve_secret)]
