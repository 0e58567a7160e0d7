"""Checks shared by halab's TOML configurations: every refusal names the key, the value and what is allowed."""

from __future__ import annotations

import tomllib
from pathlib import Path


class ConfigError(ValueError):
    """A configuration a daemon refuses to start with."""


def no_unknown(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(allowed))}")


def get(t: dict, key: str, kind: type | tuple, where: str, default: object = ..., check=None, allowed: str = ""):
    if key not in t:
        if default is ...:
            raise ConfigError(f"{where}: missing key {key!r}" + (f" ({allowed})" if allowed else ""))
        return default
    value = t[key]
    ok = isinstance(value, kind) and not (kind in (int, float, (int, float)) and isinstance(value, bool))
    if not ok or (check is not None and not check(value)):
        raise ConfigError(f"{where}: {key} = {value!r} is not allowed; expected {allowed or kind}")
    return value


def read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; pass --config with the path of a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
