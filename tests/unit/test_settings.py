"""Settings come from environment variables, in one typed place; bad values name the variable."""

from __future__ import annotations

import json
import logging
from dataclasses import fields
from pathlib import Path

import pytest
from model_server.logs import JsonFormatter
from model_server.settings import TABLE_END, TABLE_START, Settings, SettingsError, main, with_table
from support.paths import ROOT


def test_defaults() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.model_bundle) == ("127.0.0.1", 8000, None)
    assert (s.max_body_bytes, s.max_request_rows, s.max_in_flight) == (4 * 1024 * 1024, 4096, 64)
    assert (s.request_timeout_seconds, s.shutdown_grace_seconds) == (10.0, 20.0)
    assert s.trusted_types == () and not s.allow_sklearn_version_mismatch and not s.log_request_bodies
    assert s.request_timeout_seconds < s.shutdown_grace_seconds  # a request started before SIGTERM can end


def test_every_variable_is_read() -> None:
    env = {
        "MODEL_BUNDLE": "/b",
        "MODEL_NAME": "iris",
        "MODEL_VERSION": "2",
        "HOST": "0.0.0.0",
        "PORT": "9000",
        "MAX_BODY_BYTES": "100",
        "MAX_REQUEST_ROWS": "5",
        "MAX_IN_FLIGHT": "3",
        "REQUEST_TIMEOUT_SECONDS": "1.5",
        "TRUSTED_TYPES": "a.B, c.D ,",
        "ALLOW_SKLEARN_VERSION_MISMATCH": "yes",
        "RETURN_PROBABILITIES": "on",
        "LOG_LEVEL": "DEBUG",
        "LOG_REQUEST_BODIES": "1",
        "SHUTDOWN_GRACE_SECONDS": "30",
        "BATCHING": "off",
        "BATCH_MAX_ROWS": "64",
        "BATCH_MAX_WAIT_MS": "5",
        "BATCH_QUEUE_ROWS": "1000",
        "AUTH_TOKENS_FILE": "/t",
        "DRIFT_WINDOW_ROWS": "500",
    }
    s = Settings.from_env(env)
    assert s.model_bundle == Path("/b") and s.auth_tokens_file == Path("/t")
    assert (s.model_name, s.model_version, s.host, s.port) == ("iris", "2", "0.0.0.0", 9000)
    assert (s.max_body_bytes, s.max_request_rows, s.max_in_flight, s.request_timeout_seconds) == (
        100,
        5,
        3,
        1.5,
    )
    assert s.trusted_types == ("a.B", "c.D")
    assert s.allow_sklearn_version_mismatch and s.return_probabilities and s.log_request_bodies
    assert (s.log_level, s.shutdown_grace_seconds, s.batching) == ("debug", 30.0, False)
    assert (s.batch_max_rows, s.batch_max_wait_ms, s.batch_queue_rows, s.drift_window_rows) == (
        64,
        5.0,
        1000,
        500,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "http"}, "PORT='http' is not valid"),
        ({"RETURN_PROBABILITIES": "maybe"}, "RETURN_PROBABILITIES='maybe' is not valid: expected true/false"),
        ({"MAX_IN_FLIGHT": "0"}, "MAX_IN_FLIGHT must be greater than 0"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    assert message in str(err.value)


def test_cli_overrides_win() -> None:
    s = Settings.from_env({"PORT": "1", "MODEL_BUNDLE": "/env"}, port=2, model_bundle=Path("/cli"), host=None)
    assert (s.port, s.model_bundle, s.host) == (2, Path("/cli"), "127.0.0.1")


def test_json_log_lines() -> None:
    record = logging.LogRecord("model_server.access", logging.INFO, __file__, 1, "request", (), None)
    record.request_id = "abc"
    record.status = 200
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "request" and line["level"] == "info" and line["request_id"] == "abc"
    assert line["status"] == 200 and line["ts"].endswith("Z")


def test_the_configuration_reference_is_generated_from_the_settings() -> None:
    doc = ROOT / "docs" / "user-guide" / "configuration.md"
    text = doc.read_text()
    assert with_table(text) == text, "docs/user-guide/configuration.md is stale: run `make settings-doc`"
    for f in fields(Settings):
        assert f"| `{f.name.upper()}` |" in text
    assert main([str(doc), "--check"]) == 0


def test_the_generator_refuses_a_document_without_markers(tmp_path: Path) -> None:
    doc = tmp_path / "configuration.md"
    doc.write_text("# Configuration\n")
    with pytest.raises(SettingsError, match="markers"):
        main([str(doc)])
    doc.write_text(f"intro\n{TABLE_START}\nold\n{TABLE_END}\nafter\n")
    assert main([str(doc), "--check"]) == 1
    assert main([str(doc)]) == 0
    assert main([str(doc), "--check"]) == 0
    assert doc.read_text().startswith(f"intro\n{TABLE_START}\n| variable |")
    assert doc.read_text().endswith(f"{TABLE_END}\nafter\n")
