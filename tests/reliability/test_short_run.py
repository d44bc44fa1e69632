"""The short reliability run (``python -m reliability --short``), in its own process (it starts the local
stack, which sets the process's AWS environment), and what each scenario promised, figure by figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.stack_kit import ROOT

pytestmark = pytest.mark.e2e
# What CI runs: every scenario but the cold-start samples (fresh interpreters, slow on a shared runner)
# and the cost model's inputs beyond the in-process load.
SCENARIOS = ["retry_storm", "dynamodb_faults", "sqs_faults", "wechat_api_faults", "token_refresh_storm",
             "first_contact_race", "login_race", "mp_api_auth", "push_downgrade", "mutation_fuzz",
             "schemathesis_mp_api", "load_gateway", "load_in_process", "cost"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("reliability") / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WECHAT_", "TABLE_", "QUEUE_"))}
    proc = subprocess.run([sys.executable, "-m", "reliability", "--short", "--out", str(out), "--only", *SCENARIOS],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text(encoding="utf-8"))
    doc["_printed"] = proc.stdout
    return {r["scenario"]: r for r in doc["scenarios"]} | {"_doc": doc, "_rc": proc.returncode}


def figures(report, name: str) -> dict:
    result = report[name]
    failed = [c for c in result["checks"] if not c["ok"]]
    assert result["ok"], f"{name} failed: {failed}\n{result['figures'].get('traceback', '')}"
    return result["figures"]


def test_the_runner_exits_0_only_when_every_scenario_passed(report):
    assert (report["_rc"] == 0) == report["_doc"]["ok"]
    assert "| `retry_storm` |" in report["_doc"]["_printed"]


def test_retry_storm_gives_one_record_per_push_and_no_5xx(report):
    f = figures(report, "retry_storm")
    assert f["journey_records"] == f["pushes"] and f["deliveries"] == 4 * f["pushes"]
    assert not any(int(s) >= 500 for s in f["statuses"])
    assert f["cs_cards_sent"] <= f["cs_cards_expected"]


@pytest.mark.parametrize("name,cases", [("dynamodb_faults", ("throttle", "error", "slow", "timeout")),
                                        ("sqs_faults", ("sqs_error", "ddb_and_sqs"))])
def test_aws_faults_lose_nothing_accepted_and_double_nothing(report, name, cases):
    f = figures(report, name)
    for case in cases:
        assert f[case]["injected"] > 0 and f[case]["lost"] == 0 and f[case]["doubled"] == 0, (case, f[case])


def test_wechat_faults_leave_every_job_done_or_queued(report):
    f = figures(report, "wechat_api_faults")
    assert f["40001_storm"]["token_fetches"] <= 6
    assert "closed:45015" in json.dumps(f["45015_closed"]["outcomes"])


def test_races_end_with_one_fetch_one_person(report):
    assert figures(report, "token_refresh_storm")["fetches_cold"] == 1
    assert figures(report, "token_refresh_storm")["fetches_after_40001"] == 1
    assert figures(report, "first_contact_race")["people"] == 1
    assert figures(report, "login_race")["distinct_people"] == 1


def test_security_refusals_write_nothing(report):
    assert figures(report, "mp_api_auth")["writes"] == 0
    assert figures(report, "push_downgrade")["attempts"] >= 8


def test_fuzzers_find_no_crash_no_5xx_no_write_on_refusal(report):
    f = figures(report, "mutation_fuzz")
    assert f["cases"] >= 1500 and f["crashes"] == 0 and f["writes_when_refused"] == 0
    s = figures(report, "schemathesis_mp_api")
    assert s["failures"] == 0 and not any(int(k) >= 500 for k in s["statuses"])


def test_load_and_cost_figures_exist(report):
    assert figures(report, "load_gateway")["errors"] == 0
    assert figures(report, "load_in_process")["aws_requests_per_push"]["dynamodb.UpdateItem"] == 1
    cost = figures(report, "cost")
    assert cost["usd_per_1M_pushes"]["total"] < cost["usd_per_1M_pushes_naive"]["total"]
    assert cost["per_push_quantities"]["log_bytes"] > 330 * 2  # the webhook's own lines (EMF) beyond Lambda's
    assert cost["per_mp_call_quantities"]["ddb_write_units"] >= 1  # the rate-limit count is a write
    assert cost["cny_est_per_1M_pushes"]["total"] > cost["usd_per_1M_pushes"]["total"]
