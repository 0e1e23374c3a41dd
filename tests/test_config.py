"""Configuration: file, environment overrides, and one-line errors naming the key."""

from __future__ import annotations

import os
from datetime import time

import pytest

from lienwatch.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("LIENWATCH_")]:
        monkeypatch.delenv(name)


def test_defaults_use_a_sqlite_file_in_the_working_folder():
    settings = load_settings()
    assert settings.database_url == "sqlite:///lienwatch.sqlite3"
    assert settings.time_zone == "Asia/Shanghai"
    assert settings.demo.loans == 2000


def test_file_in_working_folder_is_read(tmp_path):
    (tmp_path / "lienwatch.toml").write_text('time_zone = "America/Chicago"\n[demo]\nloans = 50\n')
    settings = load_settings()
    assert settings.time_zone == "America/Chicago"
    assert settings.demo.loans == 50


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    path = tmp_path / "other.toml"
    path.write_text('database_url = "sqlite:///a.db"\n[demo]\nloans = 50\n')
    monkeypatch.setenv("LIENWATCH_CONFIG", str(path))
    monkeypatch.setenv("LIENWATCH_DATABASE_URL", "postgresql://postgres@localhost/x")
    monkeypatch.setenv("LIENWATCH_DEMO__LOANS", "70")
    settings = load_settings()
    assert settings.database_url == "postgresql://postgres@localhost/x"
    assert settings.demo.loans == 70


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[demo]\nloans = -3\n", "config: demo.loans: Input should be greater than or equal to 1"),
        (
            'time_zone = "Mars/Olympus"\n',
            "config: time_zone: unknown IANA time zone 'Mars/Olympus'",
        ),
        ("colour = 1\n", "config: colour: unknown key"),
        (
            "[servicing]\nworkers = 0\n",
            "config: servicing.workers: Input should be greater than or equal to 1",
        ),
        ('database_url = "mysql://x"\n', "config: database_url: unsupported database 'mysql'"),
        (
            "[monitor]\nwarmup_h = -1\n",
            "config: monitor.warmup_h: Input should be greater than or equal to 0",
        ),
        (
            "[monitor]\nadvance_s = 0\n",
            "config: monitor.advance_s: Input should be greater than 0",
        ),
        (
            "[monitor]\nfleet_refresh_s = 100000\n",
            "config: monitor.fleet_refresh_s: Input should be less than or equal to 86400",
        ),
        ("loans = = 2\n", "config file"),
    ],
)
def test_bad_file_value_is_one_line_naming_the_key(tmp_path, content, expected):
    (tmp_path / "lienwatch.toml").write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("LIENWATCH_DEMO__LOANS", "lots")
    with pytest.raises(ConfigError, match=r"demo\.loans: .*from environment LIENWATCH_DEMO__LOANS"):
        load_settings()


def test_missing_explicit_config_file(monkeypatch, tmp_path):
    monkeypatch.setenv("LIENWATCH_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"LIENWATCH_CONFIG: .*: no such file"):
        load_settings()


def test_followup_settings_are_validated_with_the_key(tmp_path):
    (tmp_path / "lienwatch.toml").write_text('[followup]\nstrategy = "us"\nwatchdog_lead_h = -1\n')
    with pytest.raises(ConfigError, match=r"followup\.watchdog_lead_h: Input should be greater"):
        load_settings()
    (tmp_path / "lienwatch.toml").write_text('[followup]\nstrategy = "us"\nwatchdog_lead_h = 1\n')
    assert load_settings().followup.strategy == "us"
    assert load_settings().followup.step_batch == 500


def test_step_batch_from_the_environment_and_its_bounds(monkeypatch):
    monkeypatch.setenv("LIENWATCH_FOLLOWUP__STEP_BATCH", "50")
    assert load_settings().followup.step_batch == 50
    monkeypatch.setenv("LIENWATCH_FOLLOWUP__STEP_BATCH", "0")
    with pytest.raises(ConfigError, match=r"followup\.step_batch: Input should be greater than"):
        load_settings()


def test_scheduler_settings_from_file_and_environment(tmp_path, monkeypatch):
    assert load_settings().scheduler.nightly_at == time(1, 0)
    # A TOML local time and a quoted "HH:MM" are both accepted.
    (tmp_path / "lienwatch.toml").write_text("[scheduler]\nnightly_at = 02:30:00\n")
    assert load_settings().scheduler.nightly_at == time(2, 30)
    monkeypatch.setenv("LIENWATCH_SCHEDULER__NIGHTLY_AT", "03:15")
    monkeypatch.setenv("LIENWATCH_SCHEDULER__FOLLOWUP_TICK_S", "0.5")
    scheduler = load_settings().scheduler
    assert (scheduler.nightly_at, scheduler.followup_tick_s) == (time(3, 15), 0.5)
    assert scheduler.nightly_catch_up_days == 7


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("followup_tick_s = 0", "followup_tick_s: Input should be greater than or equal to 0.1"),
        ('nightly_at = "25:00"', "nightly_at: Input should be in a valid time format"),
        ('nightly_at = "01:00+08:00"', "nightly_at: give a local time such as 01:00"),
        ("nightly_catch_up_days = 0", "nightly_catch_up_days: Input should be greater than or"),
        ("every = 5", "every: unknown key"),
    ],
)
def test_bad_scheduler_settings_name_the_key(tmp_path, content, expected):
    (tmp_path / "lienwatch.toml").write_text(f"[scheduler]\n{content}\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith(f"config: scheduler.{expected}")


def test_live_monitor_settings_from_the_file(tmp_path):
    (tmp_path / "lienwatch.toml").write_text("[monitor]\nadvance_s = 10\nwarmup_h = 120\n")
    monitor = load_settings().monitor
    assert (monitor.advance_s, monitor.fleet_refresh_s, monitor.warmup_h) == (10, 300, 120)


def test_one_business_time_zone_and_the_old_key_still_read(tmp_path, caplog):
    config = tmp_path / "lienwatch.toml"
    config.write_text('[followup]\nbusiness_time_zone = "America/New_York"\n')
    with caplog.at_level("WARNING", logger="lienwatch.config"):
        assert load_settings().time_zone == "America/New_York"
    assert "followup.business_time_zone is deprecated; set time_zone = 'America/New_York'" in (
        caplog.text)
    config.write_text('time_zone = "Asia/Shanghai"\n[followup]\nbusiness_time_zone = "UTC"\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith(
        "config: followup.business_time_zone ('UTC') and time_zone ('Asia/Shanghai') disagree")
    config.write_text('[followup]\nbusiness_time_zone = "Mars/Base"\n')
    with pytest.raises(ConfigError, match=r"config: time_zone: unknown IANA time zone 'Mars/Base'"):
        load_settings()


def test_an_unknown_environment_variable_is_a_typo_named_with_the_closest_key(monkeypatch):
    monkeypatch.setenv("LIENWATCH_DATABSE_URL", "sqlite:///elsewhere.sqlite3")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        "environment LIENWATCH_DATABSE_URL: no such setting; did you mean LIENWATCH_DATABASE_URL?")
    monkeypatch.delenv("LIENWATCH_DATABSE_URL")
    monkeypatch.setenv("LIENWATCH_FOLLOWUP__STEP_BATCH", "7")  # nested keys are the models'
    monkeypatch.setenv("LIENWATCH_CLOCK", "2026-02-17T08:30:00+08:00")
    monkeypatch.setenv("LIENWATCH_DEMO_PASSWORD", "demo password 1")  # the demo's, documented
    assert load_settings().followup.step_batch == 7
    monkeypatch.setenv("LIENWATCH_FOLLOWUP__STEPBATCH", "7")
    with pytest.raises(ConfigError, match=r"followup\.STEPBATCH|followup\.stepbatch"):
        load_settings()
