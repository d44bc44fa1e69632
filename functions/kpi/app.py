"""Daily KPIs (EventBridge Scheduler): the journey KPI queries on Athena, published as CloudWatch metrics
(EMF) for the dashboard, so operators see the KPIs without the CLI."""

from aws_lambda_powertools import Logger

from wxloop.analytics import daily
from wxloop.metrics import OutcomeMetrics

logger = Logger()
metrics = OutcomeMetrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    result = daily.run(metrics, event or {})
    logger.info("kpis published", extra={"since": result["since"], "until": result["until"],
                                         "count": len(result["metrics"])})
    return result
