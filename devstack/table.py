"""The table as ``template.yaml`` defines it (the one source of truth), for moto and local runs."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags (!Ref, !If, …) as plain values."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    assert isinstance(node, yaml.MappingNode)  # YAML has no fourth kind of node
    return {suffix: loader.construct_mapping(node, deep=True)}


_CfnLoader.add_multi_constructor("!", _any_tag)


def load_template(path: Path | None = None) -> dict:
    path = path or REPO_ROOT / "template.yaml"
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def table_definition(path: Path | None = None, logical_id: str = "Table") -> tuple[dict, str | None]:
    """``create_table`` arguments for the table in the template, and its TTL attribute."""
    path = (path or REPO_ROOT / "template.yaml").resolve()
    args, ttl = _table_definition(path, path.stat().st_mtime_ns, logical_id)
    return copy.deepcopy(args), ttl


@functools.lru_cache(maxsize=8)
def _table_definition(path: Path, mtime_ns: int, logical_id: str) -> tuple[dict, str | None]:
    # parsing the template takes a third of a second: once per template version (tests create a table each)
    props = load_template(path)["Resources"][logical_id]["Properties"]
    args: dict = {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    stream = props.get("StreamSpecification")
    if stream:
        args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    ttl = (props.get("TimeToLiveSpecification") or {}).get("AttributeName")
    return args, ttl


def create_table(ddb, table_name: str, path: Path | None = None) -> str:
    """Create the table (botocore/boto3 DynamoDB client given); returns its stream ARN, if any."""
    args, ttl = table_definition(path)
    out = ddb.create_table(TableName=table_name, **args)
    if ttl:
        ddb.update_time_to_live(TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl})
    return out["TableDescription"].get("LatestStreamArn")
