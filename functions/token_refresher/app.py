"""Token refresher (schedule): renews each account's shared access_token before it is due
(``wxloop.services.tokens``). Accounts without an app_secret have no token to renew."""

from aws_lambda_powertools import Logger

from wxloop.config import load_config
from wxloop.metrics import OutcomeMetrics
from wxloop.services import tokens

logger = Logger()
metrics = OutcomeMetrics()
load_config()  # at INIT: a wrong accounts config fails the start, naming the field


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    accounts = load_config(with_app_secrets=True).accounts
    apps = [app_id for app_id, account in accounts.items() if account.app_secret is not None]
    result = tokens.refresh_due(apps, margin=tokens.refresh_margin())
    for outcome in result.values():
        metrics.add_metric(name=f"token.{outcome}", unit="Count", value=1)
    return {"accounts": result}
