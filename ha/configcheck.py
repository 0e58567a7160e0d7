"""Checks shared by halab's TOML configurations: every refusal names the key, the value and what is allowed."""

from __future__ import annotations

import shlex
import tomllib
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, TypeVar

Config = TypeVar("Config")


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


#: A configuration is a few kilobytes; anything far larger is a mistake (or an attack on the parser).
MAX_CONFIG_BYTES = 1 << 20


def ipv4_address(value: object, key: str, where: str, allowed: str = "an IPv4 address") -> IPv4Address:
    """An IPv4 address written as a string: ipaddress alone would take the integer 5 as 0.0.0.5."""
    if isinstance(value, str):
        try:
            return IPv4Address(value)
        except ValueError:
            pass
    raise ConfigError(f"{where}: {key} = {value!r} is not allowed; expected {allowed}")


def read_toml(path: Path) -> dict:
    """The file as TOML, or a ConfigError that names the file and what is wrong with it."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; pass --config with the path of a TOML file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; pass --config with the path of a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc}); check its permissions") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes; is it the right file?")
    try:
        return tomllib.loads(data.decode())
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a configuration") from None


def table_array(raw: dict, key: str, source: str, parse_one: Callable[[Any, str], Any]) -> tuple:
    """Every [[key]] table parsed by `parse_one`; at least one, and their `name`s unique."""
    tables = raw.get(key)
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{source}: needs at least one [[{key}]] table")
    items = tuple(parse_one(t, f"{source}: {key}[{i}]") for i, t in enumerate(tables))
    names = [item.name for item in items]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: {key} names must be unique, got {names}")
    return items


def unique(keys: list, message: str) -> None:
    if len(set(keys)) != len(keys):
        raise ConfigError(message)


def named_table(t: object, allowed: set[str], where: str, kind: str) -> tuple[str, str]:
    """A [[kind]] table's name, and the `where` that names it in every later message."""
    if not isinstance(t, dict):
        raise ConfigError(f"{where}: must be a table")
    no_unknown(t, allowed, where)
    name = get(t, "name", str, where, allowed="a non-empty string", check=bool)
    return name, f"{where.split(':')[0]}: {kind} {name!r}"


def loader(parse: Callable[[dict, str], Config]) -> Callable[[Path], Config]:
    """`load(path)` for a configuration module: read the file, parse it, name the file in errors."""
    return lambda path: parse(read_toml(path), str(path))  # pragma: no mutate (runs at import: README)


def checker(parse: Callable[[dict, str], Config], dump: Callable[[Config], str]) -> Callable[[Config], Config]:
    """`check(cfg)` for a configuration built in code: the same checks a file gets (ConfigError)."""
    return lambda cfg: parse(tomllib.loads(dump(cfg)), "the configuration built by halab")  # pragma: no mutate


INTERFACE = "an interface name (1 to 15 characters, no '/', spaces or ':')"


def interface_name(value: object) -> bool:
    """What Linux accepts as a network interface name (dev_valid_name), nothing that walks a path."""
    return (isinstance(value, str) and 0 < len(value) < 16 and value not in (".", "..")
            and not any(c in value for c in "/: \t\n"))


def command_line(t: dict, key: str, where: str) -> tuple[str, ...]:
    """A command line split as a shell would (no shell runs it), or a ConfigError naming it."""
    text = get(t, key, str, where, allowed="a command line", check=lambda v: v.strip())
    try:
        return tuple(shlex.split(text))
    except ValueError as exc:  # an unbalanced quote
        raise ConfigError(f"{where}: {key} = {text!r} is not a command line ({exc}); check its quotes") from None
