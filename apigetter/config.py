"""Settings: the home dir, ``<home>/config.toml``, and the environment (plus ``<home>/.env``)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apigetter.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent


def bundled(name: str) -> Path:
    """A file shipped at the top of the source tree, or inside the installed package."""
    installed = PACKAGE_DIR / ("_contracts" if name == "contracts" else name)
    return installed if installed.exists() else PACKAGE_DIR.parent / name


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know that is not a contract."""

    home: Path
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    timezone: str = "UTC"
    origin_date: date = date(2010, 1, 1)
    apis: tuple[str, ...] = ()  # enabled APIs; empty: all
    contracts: tuple[Path, ...] = ()  # extra contract dirs
    lease_seconds: float = 120.0  # a claim whose heartbeat is older is taken over
    busy_timeout: float = 15.0  # how long to wait for another writer of the store
    connect_timeout: float = 10.0
    request_timeout: float = 60.0
    retries: int = 3  # per request, for 429, 5xx and timeouts
    retry_backoff: float = 0.5  # first retry delay; doubles each attempt, with jitter
    max_retry_wait: float = 60.0  # a longer Retry-After reschedules the endpoint instead
    max_body_bytes: int = 50 * 1024 * 1024
    backoff_cap: float = 6 * 3600.0  # between queue attempts of a failing endpoint

    @property
    def data_dir(self) -> Path:
        """Where archived JSON goes."""
        return self.home / "data"

    @property
    def store_path(self) -> Path:
        """The SQLite store."""
        return self.home / "apigetter.db"

    @property
    def tz(self) -> ZoneInfo:
        """The configured IANA time zone that day keys use."""
        return ZoneInfo(self.timezone)


class Redactor:
    """Replaces every known secret in a text with ``***``."""

    HINTS = ("TOKEN", "SECRET", "KEY", "PASSWORD")  # env names whose values are secrets

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Remember more secrets (short values would redact too much, so they are kept out)."""
        self.secrets.update(s for s in secrets if len(s) >= 6)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    @classmethod
    def for_env(cls, env: Mapping[str, str]) -> Redactor:
        """A redactor knowing every value whose variable name looks secret."""
        return cls(v for k, v in env.items() if any(h in k.upper() for h in cls.HINTS))


def default_home() -> Path:
    """The per-user data dir (platformdirs), unless ``APIGETTER_HOME`` says otherwise."""
    if home := os.environ.get("APIGETTER_HOME"):
        return Path(home)
    import platformdirs

    return Path(platformdirs.user_data_dir("apigetter", appauthor=False))


def _coerce(name: str, value: Any, kind: Any) -> Any:
    """Check one config.toml value against its field type."""
    if kind == "date":
        if isinstance(value, date):
            return value
        raise ConfigError(f"config.toml: {name} must be a date like 2015-01-01, not {value!r}")
    if kind == "tuple[str, ...]" or kind == "tuple[Path, ...]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"config.toml: {name} must be a list of strings")
        return tuple(Path(v).expanduser() for v in value) if "Path" in kind else tuple(value)
    numeric = kind in ("float", "int")
    want = (int, float) if kind == "float" else int if kind == "int" else str
    if not isinstance(value, want) or (numeric and isinstance(value, bool)):
        raise ConfigError(f"config.toml: {name} must be {kind}, not {value!r}")
    return float(value) if kind == "float" else value


def load_settings(
    home: Path | None = None,
    *,
    contracts: tuple[Path, ...] = (),
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read settings for ``home``; environment beats ``.env``, command line beats both."""
    home = (home or default_home()).expanduser()
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    config = home / "config.toml"
    if config.exists():
        try:
            raw = tomllib.loads(config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{config}: {exc}") from exc
        known = {f.name: f.type for f in fields(Settings) if f.name not in ("home", "env")}
        for key, value in raw.items():
            if key not in known:
                raise ConfigError(f"{config}: unknown key {key!r} (known: {', '.join(known)})")
            values[key] = _coerce(key, value, known[key])
    env: dict[str, str] = {}
    dotenv = home / ".env"
    if dotenv.exists():
        from dotenv import dotenv_values

        env.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    env.update(environ)
    extra = tuple(Path(p) for p in env.get("APIGETTER_CONTRACTS", "").split(os.pathsep) if p)
    values["contracts"] = (*values.get("contracts", ()), *extra, *contracts)
    settings = Settings(home=home, env=env, **values)
    try:
        settings.tz  # noqa: B018 - validate once, at the edge
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"config.toml: unknown timezone {settings.timezone!r}") from exc
    return settings
