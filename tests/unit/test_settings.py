from __future__ import annotations

from pathlib import Path

import pytest

from dobby.adapters.settings import Settings, SettingsError, eventsourcing_env, load_settings
from dobby.engine.rules.modes import Mode


def test_defaults_follow_the_spec() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert (settings.host, settings.port, settings.service_mode) == ("127.0.0.1", 18096, Mode.proposal_only)
    assert (settings.replay_budget, settings.promotion_velocity_max, settings.proposal_ttl_seconds) == (20, 5, 604800)
    assert settings.backend == "sqlite" and settings.group_commit is True
    assert settings.bobbin_path == Path("var/bobbin-provenance.jsonl")
    assert settings.require_judged_change is True


def test_values_are_read_and_converted() -> None:
    settings = load_settings(
        {
            "DOBBY_PORT": "9000",
            "DOBBY_SERVICE_MODE": "promotion_enabled",
            "DOBBY_NEUTRAL_SAMPLE_RATE": "0.5",
            "DOBBY_CONFIDENCE": "0.9",
            "DOBBY_GROUP_COMMIT": "off",
            "DOBBY_REQUIRE_JUDGED_CHANGE": "false",
            "DOBBY_BOBBIN_PATH": "",
            "DOBBY_DATABASE_URL": "postgresql://u:p%40ss@db:5433/dobby",
        }
    )
    assert (settings.port, settings.service_mode, settings.neutral_sample_rate) == (9000, Mode.promotion_enabled, 0.5)
    assert settings.group_commit is False and settings.bobbin_path is None
    assert settings.confidence == 0.9 and load_settings({}).confidence == 0.95
    assert settings.require_judged_change is False
    env = eventsourcing_env(settings)
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_PASSWORD"], env["POSTGRES_DBNAME"]) == (
        "db",
        "5433",
        "p@ss",
        "dobby",
    )


def test_the_jhf_alias_sets_the_mode_and_dobby_wins() -> None:
    assert load_settings({"JHF_DOBBY_SERVICE_MODE": "observe_only"}).service_mode == Mode.observe_only
    both = {"JHF_DOBBY_SERVICE_MODE": "observe_only", "DOBBY_SERVICE_MODE": "warmup"}
    assert load_settings(both).service_mode == Mode.warmup


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DOBBY_PORT", "http"),
        ("DOBBY_PORT", "70000"),
        ("DOBBY_NEUTRAL_SAMPLE_RATE", "1.5"),
        ("DOBBY_NEUTRAL_SAMPLE_RATE", "nan"),
        ("DOBBY_CONFIDENCE", "1"),
        ("DOBBY_CONFIDENCE", "0"),
        ("DOBBY_CONFIDENCE", "95"),
        ("DOBBY_CONFIDENCE", "high"),
        ("DOBBY_REPLAY_BUDGET", "-1"),
        ("DOBBY_BODY_TIMEOUT_SECONDS", "0.5"),
        ("DOBBY_BODY_TIMEOUT_SECONDS", "ten"),
        ("DOBBY_CLOCK_SKEW_SECONDS", "-1"),
        ("DOBBY_MAX_IN_FLIGHT", "0"),
        ("DOBBY_REPLAY_BUDGET", "0"),
        ("DOBBY_REPLAY_BUDGET", "2.5"),
        ("DOBBY_PROMOTION_VELOCITY_MAX", "0"),
        ("DOBBY_PROPOSAL_TTL_SECONDS", "0"),
        ("DOBBY_PROPOSAL_TTL_SECONDS", "99999999999"),
        ("DOBBY_REPLAY_BUDGET_WINDOW_SECONDS", "0"),
        ("DOBBY_REPLAY_BUDGET_WINDOW_SECONDS", "0.5"),
        ("DOBBY_REPLAY_BUDGET_WINDOW_SECONDS", "1e999"),
        ("DOBBY_PROMOTION_VELOCITY_WINDOW_SECONDS", "0"),
        ("DOBBY_PROMOTION_VELOCITY_WINDOW_SECONDS", "1e300"),
        ("DOBBY_PROCESSOR_INTERVAL_SECONDS", "inf"),
        ("DOBBY_PROCESSOR_INTERVAL_SECONDS", "0"),
        ("DOBBY_DB_TIMEOUT_SECONDS", "0"),
        ("DOBBY_DB_WAIT_SECONDS", "-1"),
        ("DOBBY_FABRIC_REFRESH_SECONDS", "0"),
        ("DOBBY_WARP_TIMEOUT_MS", "0"),
        ("DOBBY_SHUTTLE_TIMEOUT_MS", "0"),
        ("DOBBY_SERVICE_MODE", "turbo"),
        ("DOBBY_GROUP_COMMIT", "maybe"),
        ("DOBBY_REQUIRE_JUDGED_CHANGE", "sometimes"),
        ("DOBBY_DATABASE_URL", "mysql://x"),
        ("DOBBY_FABRIC_URL", "ftp://fabric"),
        ("DOBBY_WARP_URL", "http://warp:1"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({name: value})
    assert name in str(caught.value) and "\n" not in str(caught.value)


def test_sqlite_paths() -> None:
    relative = eventsourcing_env(Settings(database_url="sqlite:///var/test-x.db"))
    assert relative["SQLITE_DBNAME"] == "var/test-x.db"
    absolute = eventsourcing_env(Settings(database_url="sqlite:////tmp/dobby-abs.db"))
    assert absolute["SQLITE_DBNAME"] == "/tmp/dobby-abs.db"
