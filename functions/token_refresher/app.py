"""Token refresher (schedule): renews each account's shared access_token before it is due.

It takes the same DynamoDB lease as the worker, so it never fetches in parallel with one. Deployed with a
fixed egress IP (VPC + NAT) when OA accounts have an IP allow-list, which token fetches require (40164).
"""

from aws_lambda_powertools import Logger

from wxloop.adapters import wechat
from wxloop.config import load_config
from wxloop.metrics import OutcomeMetrics

logger = Logger()
metrics = OutcomeMetrics()
load_config()  # at INIT: a wrong accounts config fails the start, naming the field


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    margin = wechat.refresh_margin()
    result: dict[str, str] = {}
    for app_id, account in load_config(with_app_secrets=True).accounts.items():
        if account.app_secret is None:
            continue
        try:
            result[app_id] = "refreshed" if wechat.refresh_if_due(app_id, margin=margin) else "unchanged"
        except Exception as exc:  # one account's failure must not stop the others; alarm on the metric
            result[app_id] = "failed"
            logger.error("token refresh failed", extra={"app_id": app_id, "error": f"{type(exc).__name__}: {exc}"[:300]})
        metrics.add_metric(name=f"token.{result[app_id]}", unit="Count", value=1)
    return {"accounts": result}
