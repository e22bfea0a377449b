"""Settings and CLI: precedence flag > env > default, LocalAI's names, value parsing, --help."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from appliance.cli import build_parser, describe_settings_error, main, settings_from_args
from appliance.config import Settings, env_names, flag_names
from appliance.config_values import parse_address, parse_duration


def parse(*argv: str) -> Settings:
    return settings_from_args(build_parser().parse_args(["run", *argv]))


def test_defaults() -> None:
    s = parse()
    assert s.address == "127.0.0.1:8080" and (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.models_path == Path("models") and s.data_path == Path("data")
    assert s.upload_limit == 15 and s.upload_limit_bytes == 15 * 1024 * 1024
    assert s.api_keys == [] and s.cors is False and s.cors_allow_origins == []
    assert s.max_active_backends == 0 and s.log_level == "info"
    assert s.watchdog_idle_timeout == 900 and s.watchdog_busy_timeout == 300


def test_flag_beats_env_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse().threads is None
    monkeypatch.setenv("LOCALAI_THREADS", "3")
    assert parse().threads == 3
    monkeypatch.setenv("APPLIANCE_THREADS", "4")
    assert parse().threads == 4  # ours beats LocalAI's name
    assert parse("--threads", "5").threads == 5
    assert parse("-t", "6").threads == 6


@pytest.mark.parametrize("field", list(Settings.model_fields))
def test_every_env_name_sets_its_field(monkeypatch: pytest.MonkeyPatch, field: str) -> None:
    sample = {
        "models_path": ("/srv/models", Path("/srv/models")),
        "config_file": ("/srv/c.yaml", Path("/srv/c.yaml")),
        "data_path": ("/srv/data", Path("/srv/data")),
        "address": ("0.0.0.0:9000", "0.0.0.0:9000"),
        "threads": ("7", 7),
        "context_size": ("4096", 4096),
        "f16": ("true", True),
        "api_keys": ("a,b", ["a", "b"]),
        "api_keys_file": ("/srv/keys", Path("/srv/keys")),
        "cors": ("true", True),
        "cors_allow_origins": ("http://a,http://b", ["http://a", "http://b"]),
        "upload_limit": ("20", 20),
        "disable_web_ui": ("true", True),
        "parallel_requests": ("true", True),
        "single_active_backend": ("true", True),
        "max_active_backends": ("3", 3),
        "enable_watchdog_idle": ("true", True),
        "watchdog_idle_timeout": ("1h", 3600.0),
        "enable_watchdog_busy": ("true", True),
        "watchdog_busy_timeout": ("90s", 90.0),
        "max_queued_requests": ("5", 5),
        "queue_timeout": ("2m", 120.0),
        "memory_budget": ("1GiB", 1024**3),
        "batch_max_size": ("8", 8),
        "batch_max_wait_ms": ("0.5", 0.5),
        "batch_max_tokens": ("999", 999),
        "disable_batching": ("true", True),
        "truncate_inputs": ("false", False),
        "file_upload_limit": ("64", 64),
        "default_embedding_model": ("bge-small", "bge-small"),
        "retrieval_min_similarity": ("0.4", 0.4),
        "ingest_workers": ("3", 3),
        "extraction_timeout": ("5m", 300.0),
        "extraction_memory_mb": ("512", 512),
        "document_max_pages": ("100", 100),
        "image_max_size": ("512X768", "512x768"),
        "image_max_n": ("2", 2),
        "generated_max_age": ("15m", 900.0),
        "builtin_models": ("false", False),
        "preload_models": ('["m1", {"name": "m2"}]', ["m1", "m2"]),
        "galleries": ('[{"name": "g", "url": "github:o/r/index.yaml"}]', [{"name": "g", "url": "github:o/r/index.yaml"}]),
        "allow_private_downloads": ("true", True),
        "max_download_size": ("2GiB", 2 * 1024**3),
        "log_level": ("WARN", "warning"),
    }
    raw, expected = sample[field]
    for name in env_names(field):
        monkeypatch.setenv(name, raw)
        assert getattr(Settings(), field) == expected, name
        monkeypatch.delenv(name)


def test_localai_env_names_are_accepted() -> None:
    assert "LOCALAI_MODELS_PATH" in env_names("models_path") and "MODELS_PATH" in env_names("models_path")
    assert "LOCALAI_MODELS_CONFIG_FILE" in env_names("config_file")
    assert "LOCALAI_API_KEY" in env_names("api_keys")
    assert "LOCALAI_DISABLE_WEBUI" in env_names("disable_web_ui")
    assert env_names("data_path") == ["APPLIANCE_DATA_PATH"]


def test_localai_flag_aliases() -> None:
    assert parse("--models-config-file", "x.yaml").config_file == Path("x.yaml")
    assert parse("--config-file", "y.yaml").config_file == Path("y.yaml")
    assert parse("--disable-webui").disable_web_ui is True
    assert parse("--api-keys", "k1, k2,").api_keys == ["k1", "k2"]


def test_bool_flags_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_F16", "true")
    assert parse().f16 is True
    assert parse("--no-f16").f16 is False


def test_single_active_backend_means_one() -> None:
    assert parse("--single-active-backend").max_active_backends == 1
    assert parse("--max-active-backends", "2").max_active_backends == 2


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900), ("1h30m", 5400), ("500ms", 0.5), ("90", 90), (12, 12), ("2.5s", 2.5)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "15x", "-5", "0", "5m junk"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1:8080", ("127.0.0.1", 8080)), (":8080", ("0.0.0.0", 8080)), ("[::1]:9", ("::1", 9))],
)
def test_addresses(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


def test_loopback_detection() -> None:
    assert parse("--address", "127.0.0.1:1").binds_loopback_only
    assert parse("--address", "localhost:1").binds_loopback_only
    assert parse("--address", "[::1]:1").binds_loopback_only
    assert not parse("--address", ":8080").binds_loopback_only
    assert not parse("--address", "0.0.0.0:8080").binds_loopback_only


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--threads", "zero"], "--threads"),
        (["--upload-limit", "0"], "--upload-limit"),
        (["--address", "nope"], "--address"),
        (["--watchdog-idle-timeout", "soon"], "--watchdog-idle-timeout"),
        (["--log-level", "loud"], "--log-level"),
    ],
)
def test_bad_values_name_the_flag(argv: list[str], flag: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(*argv)
    assert flag in describe_settings_error(caught.value)


def test_bad_env_value_names_the_flag_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALAI_UPLOAD_LIMIT", "lots")
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = describe_settings_error(caught.value)
    assert "--upload-limit" in message and "APPLIANCE_UPLOAD_LIMIT" in message


def test_main_reports_bad_settings_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--threads", "-1"]) == 2
    err = capsys.readouterr().err
    assert "invalid setting --threads" in err and "Traceback" not in err


def test_help_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for field in Settings.model_fields:
        for flag in flag_names(field):
            assert flag in text, flag
        for name in env_names(field):
            assert name in text, name
    assert "(default: 127.0.0.1:8080)" in text
    assert "(default: 15)" in text


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "run" in capsys.readouterr().out
