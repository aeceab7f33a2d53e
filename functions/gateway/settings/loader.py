"""Reading values: the `.env` file (raw, no escape processing), text to typed values, and declarative field checks.

The only place of the gateway that turns environment text into settings (`Settings.from_env` uses it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import Field, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

TRUE_WORDS = {"1", "true", "yes", "on", "enabled"}
FALSE_WORDS = {"0", "false", "no", "off", "disabled", ""}


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message says what to set."""


# A declarative range check: a predicate on the value and what the value must be, for the error message.
Check = tuple[Callable[[Any], bool], str]

POSITIVE: Check = (lambda value: value > 0, "must be positive")
NOT_NEGATIVE: Check = (lambda value: value >= 0, "must be 0 or more")
FINITE_NOT_NEGATIVE: Check = (lambda value: value >= 0 and math.isfinite(value), "must be 0 or a positive number")
HTTP_URL: Check = (lambda value: not value or value.startswith(("http://", "https://")), "must be an http(s) URL")


def between(low: float, high: float) -> Check:
    return (lambda value: low <= value <= high, f"must be between {low:g} and {high:g}")


def setting(default: Any, doc: str, *, secret: bool = False, check: Check | None = None) -> Any:
    """A field with its description (docs/configuration.md) and optional check; a secret is left out of repr()."""
    return field(default=default, repr=not secret, metadata={"doc": doc, "check": check, "secret": secret})


def read_dotenv(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines of a .env file; quotes stripped, no escape processing, comments and blanks skipped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw_line in path.read_text(encoding="utf-8").splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def parse(name: str, raw: str, kind: Any) -> object:
    """`raw` as the field's type: bool words, int, float, one of a Literal's values, else the text itself."""
    if get_origin(kind) is Literal:
        check_choice(name, raw, kind)
        return raw
    kind_name = getattr(kind, "__name__", str(kind))
    try:
        if kind is bool:
            lowered = raw.lower()
            if lowered in TRUE_WORDS:
                return True
            if lowered in FALSE_WORDS:
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a {kind_name}, not {raw!r}") from None
    return raw


def check_choice(name: str, value: object, kind: Any) -> None:
    choices = get_args(kind)
    if value not in choices:
        shown = ", ".join(repr(choice) if choice == "" else str(choice) for choice in choices)
        raise ConfigError(f"{name} must be one of {shown}, not {value!r}")


def check_field(spec: Field, kind: Any, value: object) -> None:
    """The field's Literal choices and its declarative check; ConfigError names the variable."""
    name = spec.name.upper()
    if get_origin(kind) is Literal:
        check_choice(name, value, kind)
    check: Check | None = spec.metadata.get("check")
    if check is not None and not check[0](value):
        raise ConfigError(f"{name} {check[1]}, not {value!r}")
