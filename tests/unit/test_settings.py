"""The one settings object: every variable typed, read once, and documented from the model."""

import re
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


# The modules that may read the environment themselves (docs/configuration.md says why); every name read
# anywhere must still be a field of the model, so the table documents it.
DIRECT_READERS = {
    "layers/wxloop/settings.py",
    "layers/wxloop/config.py",  # the accounts document: per call, tools and tests switch it
    "layers/wxloop/adapters/queue.py",  # QUEUE_URL, PLAN_QUEUE_URL: tests point them at a new queue per test
    "layers/wxloop/campaign_cli.py",  # writes the operator's AWS read timeout before any client exists
    "layers/wxloop/services/jobs/timing.py",  # being reshaped: moves to the settings then
    "functions/privacy/app.py",  # being reshaped: moves to the settings then
}
_READ = re.compile(r"""os\.environ(?:\.get\(|\[)\s*["']([A-Z0-9_]+)["']""")


def _environment_reads() -> dict[str, set[str]]:
    root = DOC.parents[1]
    out: dict[str, set[str]] = {}
    for path in [*(root / "layers" / "wxloop").rglob("*.py"), *(root / "functions").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        if re.search(r"\bos\.environ\b|\bgetenv\b|\bimport environ\b", text):
            out[path.relative_to(root).as_posix()] = set(_READ.findall(text)) or {"?"}
    return out


def test_only_the_listed_modules_read_the_environment_and_every_variable_is_in_the_model() -> None:
    reads = _environment_reads()
    assert set(reads) - {"layers/wxloop/settings.py"} <= DIRECT_READERS, "read it through wxloop.settings"
    known = {f.alias for f in Settings.model_fields.values()}
    named = set().union(*reads.values()) - {"?"}
    assert named <= known, f"add to wxloop.settings.Settings: {sorted(named - known)}"


def test_the_read_finder_sees_both_forms() -> None:
    assert _READ.findall('os.environ.get("A_B") or os.environ["C1"]') == ["A_B", "C1"]
