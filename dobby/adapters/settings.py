"""Every DOBBY_* setting of SPEC §7, read from one mapping in one place, with errors that name the variable."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from dobby.engine.rules.modes import Mode

T = TypeVar("T")
MAX_COUNT = 10**9
DAY = 86_400
MAX_WINDOW = 366 * DAY
MAX_TTL = 31_536_000  # a year, as a proposal's own ttl_seconds
MIN_SECRET_LENGTH = 16


class SettingsError(ValueError):
    """A setting has a value dobby cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/dobby.db"
    host: str = "127.0.0.1"
    port: int = 18096
    service_mode: Mode = Mode.proposal_only
    neutral_sample_rate: float = 0.25
    replay_budget: int = 20
    replay_budget_window_seconds: float = 3600
    promotion_velocity_max: int = 5
    promotion_velocity_window_seconds: float = 3600
    proposal_ttl_seconds: int = 604_800
    approval_quorum_high: int = 1
    approval_quorum_critical: int = 2
    confidence: float = 0.95
    processor_interval_seconds: float = 5
    db_timeout_seconds: float = 2
    db_wait_seconds: float = 60
    body_timeout_seconds: float = 10
    max_in_flight: int = 512
    clock_skew_seconds: float = 300
    group_commit: bool = True
    require_judged_change: bool = True
    fabric_url: str | None = None
    fabric_file: Path | None = None
    fabric_refresh_seconds: float = 30
    warp_url: str | None = None
    warp_token: str | None = None
    warp_approvals_dir: Path = Path("var/warp-approvals")
    warp_timeout_ms: int = 1000
    shuttle_url: str | None = None
    shuttle_timeout_ms: int = 300
    bobbin_path: Path | None = Path("var/bobbin-provenance.jsonl")
    api_tokens_file: Path | None = None
    console_secret: str | None = None
    audit_signing_key: Path | None = None

    @property
    def backend(self) -> str:
        return database_backend(self.database_url)


def database_backend(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        return "postgres"
    if scheme == "sqlite":
        return "sqlite"
    if scheme == "memory":
        return "memory"
    raise SettingsError(f"DOBBY_DATABASE_URL: unsupported scheme {scheme!r}; use sqlite:///PATH or postgresql://…")


def _number(
    parse: Callable[[str], T],
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Callable[[str, str], T]:
    def read(name: str, raw: str) -> T:
        try:
            value = parse(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a valid {parse.__name__}") from None
        number = float(value)  # type: ignore[arg-type]
        if (
            not math.isfinite(number)
            or (low is not None and (number <= low if low_open else number < low))
            or (high is not None and (number >= high if high_open else number > high))
        ):
            bounds = f"{'(' if low_open else '['}{low}, {high if high is not None else '∞'}{')' if high_open else ']'}"
            raise SettingsError(f"{name}={raw!r} is outside {bounds}")
        return value

    return read


def _switch(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("on", "true", "1", "yes"):
        return True
    if lowered in ("off", "false", "0", "no"):
        return False
    raise SettingsError(f"{name}={raw!r}: use on or off")


def _mode(name: str, raw: str) -> Mode:
    try:
        return Mode.parse(raw.strip())
    except ValueError as error:
        raise SettingsError(f"{name}: {error}") from None


def _url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{name}={raw!r} is not an http(s) URL")
    return raw.rstrip("/")


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Settings from `environ`; unset or empty variables keep their defaults (SPEC §7)."""
    values: dict[str, object] = {}

    def take(field: str, name: str, read: Callable[[str, str], object]) -> None:
        raw = environ.get(name)
        if raw is not None and raw.strip() != "":
            values[field] = read(name, raw.strip())

    take("database_url", "DOBBY_DATABASE_URL", lambda n, r: r)
    take("host", "DOBBY_HOST", lambda n, r: r)
    take("port", "DOBBY_PORT", _number(int, 1, 65535))
    take("service_mode", "JHF_DOBBY_SERVICE_MODE", _mode)
    take("service_mode", "DOBBY_SERVICE_MODE", _mode)
    take("neutral_sample_rate", "DOBBY_NEUTRAL_SAMPLE_RATE", _number(float, 0, 1))
    take("confidence", "DOBBY_CONFIDENCE", _number(float, 0, 1, low_open=True, high_open=True))
    take("replay_budget", "DOBBY_REPLAY_BUDGET", _number(int, 1, MAX_COUNT))
    take("replay_budget_window_seconds", "DOBBY_REPLAY_BUDGET_WINDOW_SECONDS", _number(float, 1, MAX_WINDOW))
    take("promotion_velocity_max", "DOBBY_PROMOTION_VELOCITY_MAX", _number(int, 1, MAX_COUNT))
    take("approval_quorum_high", "DOBBY_APPROVAL_QUORUM_HIGH", _number(int, 1, 100))
    take("approval_quorum_critical", "DOBBY_APPROVAL_QUORUM_CRITICAL", _number(int, 1, 100))
    take(
        "promotion_velocity_window_seconds",
        "DOBBY_PROMOTION_VELOCITY_WINDOW_SECONDS",
        _number(float, 1, MAX_WINDOW),
    )
    take("proposal_ttl_seconds", "DOBBY_PROPOSAL_TTL_SECONDS", _number(int, 1, MAX_TTL))
    take("processor_interval_seconds", "DOBBY_PROCESSOR_INTERVAL_SECONDS", _number(float, 0, DAY, low_open=True))
    take("db_timeout_seconds", "DOBBY_DB_TIMEOUT_SECONDS", _number(float, 0, 3600, low_open=True))
    take("db_wait_seconds", "DOBBY_DB_WAIT_SECONDS", _number(float, 0, DAY))
    take("body_timeout_seconds", "DOBBY_BODY_TIMEOUT_SECONDS", _number(float, 1, 3600))
    take("max_in_flight", "DOBBY_MAX_IN_FLIGHT", _number(int, 1, 1_000_000))
    take("clock_skew_seconds", "DOBBY_CLOCK_SKEW_SECONDS", _number(float, 0, DAY))
    take("group_commit", "DOBBY_GROUP_COMMIT", _switch)
    take("require_judged_change", "DOBBY_REQUIRE_JUDGED_CHANGE", _switch)
    take("fabric_url", "DOBBY_FABRIC_URL", _url)
    take("fabric_file", "DOBBY_FABRIC_FILE", lambda n, r: Path(r))
    take("fabric_refresh_seconds", "DOBBY_FABRIC_REFRESH_SECONDS", _number(float, 0, DAY, low_open=True))
    take("warp_url", "DOBBY_WARP_URL", _url)
    take("warp_token", "DOBBY_WARP_TOKEN", lambda n, r: r)
    take("warp_approvals_dir", "DOBBY_WARP_APPROVALS_DIR", lambda n, r: Path(r))
    take("warp_timeout_ms", "DOBBY_WARP_TIMEOUT_MS", _number(int, 1, 600_000))
    take("shuttle_url", "DOBBY_SHUTTLE_URL", _url)
    take("shuttle_timeout_ms", "DOBBY_SHUTTLE_TIMEOUT_MS", _number(int, 1, 600_000))
    take("api_tokens_file", "DOBBY_API_TOKENS_FILE", lambda n, r: Path(r))
    take("audit_signing_key", "DOBBY_AUDIT_SIGNING_KEY", lambda n, r: Path(r))
    take("console_secret", "DOBBY_CONSOLE_SECRET", _secret)
    if "DOBBY_BOBBIN_PATH" in environ:
        raw = environ["DOBBY_BOBBIN_PATH"].strip()
        values["bobbin_path"] = Path(raw) if raw else None
    settings = Settings(**values)  # type: ignore[arg-type]
    database_backend(settings.database_url)
    if settings.fabric_url and settings.fabric_file:
        raise SettingsError("DOBBY_FABRIC_URL and DOBBY_FABRIC_FILE are both set; choose one")
    if settings.warp_url and not settings.warp_token:
        raise SettingsError("DOBBY_WARP_TOKEN is required when DOBBY_WARP_URL is set")
    return settings


def _secret(name: str, raw: str) -> str:
    if len(raw) < MIN_SECRET_LENGTH:
        raise SettingsError(f"{name} must be at least {MIN_SECRET_LENGTH} characters (a random string)")
    return raw


def eventsourcing_env(settings: Settings) -> dict[str, str]:
    """The `eventsourcing` persistence settings for DOBBY_DATABASE_URL."""
    url = settings.database_url
    backend = settings.backend
    if backend == "memory":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if backend == "sqlite":
        path = sqlite_path(url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "dobby.adapters.sqlite_store:DobbySQLiteFactory",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": str(max(1, round(settings.db_timeout_seconds))),
        }
    parts = urlsplit(url)
    timeout = str(max(1, round(settings.db_timeout_seconds)))
    return {
        "PERSISTENCE_MODULE": "dobby.adapters.postgres_recorder:DobbyPostgresFactory",
        "CREATE_TABLE": "no",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_LOCK_TIMEOUT": timeout,
        "POSTGRES_CONNECT_TIMEOUT": timeout,
        "POSTGRES_POOL_SIZE": "5",
        "POSTGRES_MAX_OVERFLOW": "15",
    }


def database_display(url: str) -> str:
    """DOBBY_DATABASE_URL as it may be shown (a start-up line, a log): without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def missing_store(settings: Settings) -> Path | None:
    """The SQLite file that DOBBY_DATABASE_URL names when it does not exist (a command that only reads a store
    must not create an empty one and report it healthy); None otherwise."""
    if settings.backend != "sqlite":
        return None
    path = sqlite_path(settings.database_url)
    return None if path == ":memory:" or Path(path).exists() else Path(path)


def sqlite_path(url: str) -> str:
    """sqlite:///relative/path, sqlite:////absolute/path or sqlite:///:memory:."""
    path = url.split("sqlite://", 1)[1]
    if path.startswith("/"):
        path = path[1:]
    if not path:
        raise SettingsError("DOBBY_DATABASE_URL: a sqlite URL needs a path, e.g. sqlite:///var/dobby.db")
    return path
