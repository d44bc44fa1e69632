"""SnapStart priming: what a restored snapshot should already hold, so the first push after a restore pays
neither the AWS client's creation nor the accounts config's parsing.

Importing this module registers the hook with the Lambda runtime (``snapshot_restore_py``, present in the
managed Python runtimes from 3.12). Without that package (tests, ``make run``, Python 3.11) the import does
nothing; with SnapStart off (the template's default) the runtime never calls the hook.

Priming calls no AWS API of the push path: creating a botocore client reads only its bundled service model,
so no DynamoDB or SQS socket is kept in the snapshot (one would be dead after the restore, and the webhooks
make a single attempt per call). Deployed, the accounts config is read from its secret here: the snapshot
(encrypted by Lambda) then holds it, and Powertools reads it again once its ``max_age`` has passed.
"""

from __future__ import annotations

PRIMED_SERVICES = ("dynamodb", "sqs")


def prime() -> list[str]:
    """Create the shared AWS clients and parse the accounts config; returns the services primed.

    Raises what ``load_config`` raises: a snapshot of a function whose config is wrong must not be published.
    """
    from wxloop.adapters import aws
    from wxloop.config import load_config

    for service in PRIMED_SERVICES:
        aws.client(service)
    load_config()
    return list(PRIMED_SERVICES)


def _register() -> bool:
    try:
        from snapshot_restore_py import register_before_snapshot  # type: ignore[import-not-found]
    except ImportError:  # not in a Lambda managed runtime
        return False
    register_before_snapshot(prime)
    return True


REGISTERED = _register()
