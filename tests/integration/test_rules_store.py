"""Rule sets in DynamoDB (moto): CLI push/pull round trip, versions, the CURRENT pointer, conflicts."""

from __future__ import annotations

from pathlib import Path

import moto  # noqa: F401 - before any AWS client exists
import yaml

from wxloop.adapters import repository
from wxloop.adapters.dynamo.keys import rules_key
from wxloop.cli import main
from wxloop.domain.rules import RuleSet
from wxloop.rulesfile import load_rule_set

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = str(REPO / "rules" / "example.yaml")
OA = "wx1234567890abcdef"
OTHER = "wx00000000000000aa"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_given_the_example_when_pushed_and_pulled_then_the_pulled_file_compiles_to_the_same_set(aws, capsys, tmp_path):
    code, out, err = run(capsys, "rules", "push", EXAMPLE)
    assert code == 0, err
    local, _ = load_rule_set(EXAMPLE)
    assert f"version {local.version} of {OA}" in out
    assert "within 30 s (RULES_REFRESH_SECONDS)" in out and "now current" not in out
    assert repository.current_rule_version(OA) == local.version

    pulled = tmp_path / "pulled.yaml"
    code, out, _ = run(capsys, "rules", "pull", "--app", OA, "-o", str(pulled))
    assert code == 0
    doc = yaml.safe_load(pulled.read_text(encoding="utf-8"))
    again = RuleSet.compile(doc)
    assert again.to_doc() == local.to_doc()
    assert again.rules == local.rules

    code, out, _ = run(capsys, "rules", "pull", "--app", OA)  # to standard output
    assert code == 0 and yaml.safe_load(out)["version"] == local.version


def test_given_two_versions_when_the_second_is_pushed_then_it_is_current_and_the_first_stays_pullable(aws, capsys, tmp_path):
    v1 = tmp_path / "v1.yaml"
    v1.write_text("version: r1\nrules:\n  - {id: a, keywords: [hi], reply: {text: one}}\n", encoding="utf-8")
    v2 = tmp_path / "v2.yaml"
    v2.write_text("version: r2\nrules:\n  - {id: a, keywords: [hi], reply: {text: two}}\n", encoding="utf-8")
    assert run(capsys, "rules", "push", str(v1), "--app", OTHER)[0] == 0
    assert run(capsys, "rules", "push", str(v2), "--app", OTHER)[0] == 0
    assert repository.current_rule_version(OTHER) == "r2"
    assert repository.get_rule_set(OTHER)[0] == "r2"
    version, doc = repository.get_rule_set(OTHER, "r1")
    assert version == "r1" and doc["rules"][0]["reply"] == {"text": "one"}
    code, out, _ = run(capsys, "rules", "pull", "--app", OTHER, "--version", "r1")
    assert code == 0 and "text: one" in out
    assert repository.current_rule_version(OA) is None  # other accounts untouched


def test_given_a_stored_version_when_the_same_version_is_pushed_with_other_content_then_it_is_refused(aws, capsys, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("version: r1\nrules:\n  - {id: a, keywords: [hi], reply: {text: one}}\n", encoding="utf-8")
    assert run(capsys, "rules", "push", str(path), "--app", OTHER)[0] == 0
    assert run(capsys, "rules", "push", str(path), "--app", OTHER)[0] == 0  # same content: idempotent
    path.write_text("version: r1\nrules:\n  - {id: a, keywords: [hi], reply: {text: changed}}\n", encoding="utf-8")
    code, _, err = run(capsys, "rules", "push", str(path), "--app", OTHER)
    assert code == 2
    assert err.startswith(f"{path}:1: ") and "already exists with different content" in err
    assert repository.get_rule_set(OTHER)[1]["rules"][0]["reply"] == {"text": "one"}


def test_given_a_file_for_one_account_when_pushed_to_another_then_nothing_is_stored(aws, capsys):
    code, _, err = run(capsys, "rules", "push", EXAMPLE, "--app", OTHER)
    assert code == 2 and "app_id" in err
    assert repository.current_rule_version(OTHER) is None


def test_given_a_file_without_app_id_when_pushed_without_app_then_exit_2(aws, capsys, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("rules: []\n", encoding="utf-8")
    code, _, err = run(capsys, "rules", "push", str(path))
    assert code == 2 and "--app" in err


def test_given_nothing_stored_when_pulled_then_exit_1(aws, capsys):
    code, _, err = run(capsys, "rules", "pull", "--app", OTHER)
    assert code == 1 and f"{OTHER} has no current rule set" in err


def test_given_a_large_rule_set_when_stored_then_it_is_compressed_and_reads_back_identically(aws):
    rules = [{"id": f"r{i}", "match": "contains", "keywords": [f"关键词{i}", f"keyword-{i}"], "priority": i % 7,
              "reply": {"text": f"第 {i} 条回复，" + "内容" * 40}} for i in range(1500)]
    rs = RuleSet.compile({"rules": rules})
    doc = rs.to_doc()
    repository.put_rule_set(OTHER, doc, rs.version)
    raw = aws.ddb.get_item(TableName=aws.table, Key={"pk": {"S": f"RULES#{OTHER}"}, "sk": {"S": "CURRENT"}})["Item"]
    assert "doc_z" in raw and "doc" not in raw
    assert repository.get_rule_set(OTHER) == (rs.version, doc)


def test_given_a_stored_blob_that_inflates_past_the_ceiling_when_read_then_it_is_refused_not_inflated(aws):
    """A decompression bomb under CURRENT (97 KB inflating to 100 MB) is refused before it is inflated."""
    import zlib

    import pytest

    from wxloop.domain.rules.stored import StoredRulesTooLarge

    bomb = zlib.compress(b'{"rules":[' + b" " * 100_000_000 + b"]}", 9)
    item = {**rules_key(OTHER, "CURRENT"), "version": {"S": "bomb"}, "doc_z": {"B": bomb}}
    aws.ddb.put_item(TableName=aws.table, Item=item)
    with pytest.raises(StoredRulesTooLarge):
        repository.get_rule_set(OTHER)
