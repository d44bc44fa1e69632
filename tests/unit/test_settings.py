"""The one settings object: every variable typed, read once, and documented from the model."""

from pathlib import Path

import pytest

from wxloop.settings import Settings, configuration_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_configuration_doc_shows_the_table_generated_from_the_model() -> None:
    text = DOC.read_text(encoding="utf-8")
    generated = text.split("<!-- generated -->\n", 1)[1].split("<!-- end generated -->", 1)[0]
    assert generated == configuration_table(), "run `make configuration-doc`"


def test_defaults_and_empty_values() -> None:
    s = Settings.from_env({"WECHAT_CLOCK_SKEW_SECONDS": "", "WECHAT_API_BASE": "http://127.0.0.1:9/"})
    assert s.clock_skew_seconds == 300 and s.wechat_api_base == "http://127.0.0.1:9"
    assert s.rules_refresh_seconds == 30.0 and s.aws_max_attempts is None and s.region == "us-east-1"


@pytest.mark.parametrize(("name", "raw"), [("WECHAT_CLOCK_SKEW_SECONDS", "5m"), ("PUSH_BUDGET_SECONDS", "-1"),
                                           ("WXLOOP_AWS_MAX_ATTEMPTS", "two")])
def test_a_malformed_value_fails_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(RuntimeError, match=name):
        Settings.from_env({name: raw})


def test_metrics_switch_and_aws_bounds() -> None:
    s = Settings.from_env({"POWERTOOLS_METRICS_DISABLED": "TRUE", "WXLOOP_AWS_READ_TIMEOUT": "1.5"})
    assert s.metrics_disabled is True and s.aws_read_timeout == 1.5
