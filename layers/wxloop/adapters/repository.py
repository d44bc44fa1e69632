"""Deprecated re-export of ``wxloop.adapters.dynamo``, kept while callers move to the package's modules.

New code imports the aggregate module it needs (``from wxloop.adapters.dynamo import identities``).
"""

from __future__ import annotations

from wxloop.adapters.dynamo.codec import (  # noqa: F401
    ConditionFailed,
    RepositoryError,
    TransactionCancelled,
    ddb,
    is_conditional_failure,
    marshal,
    table_name,
    unmarshal,
)
from wxloop.adapters.dynamo.credits import (  # noqa: F401
    apply_subscribe_event,
    refund_subscribe_credit,
    spend_subscribe_credit,
    zero_subscribe_credit,
)
from wxloop.adapters.dynamo.identities import (  # noqa: F401
    DEDUPE_PERIOD_SECONDS,
    DEDUPE_SETS,
    Touch,
    create_identity,
    exhaust_cs_window,
    get_identity,
    leave_outbox,
    mark_channel_closed,
    new_uid,
    refund_cs_window,
    spend_cs_window,
    store_reply,
    touch_identity,
)
from wxloop.adapters.dynamo.jobs import (  # noqa: F401
    block_quota,
    claim_job,
    finish_job,
    get_job,
    quota_blocked_until,
    release_job,
)
from wxloop.adapters.dynamo.journey import journey, put_journey_event  # noqa: F401
from wxloop.adapters.dynamo.keys import (  # noqa: F401
    identity_key,
    job_key,
    person_key,
    quota_key,
    subscribe_credit_key,
    token_key,
    union_key,
)
from wxloop.adapters.dynamo.people import IdentityNotFound, get_person, link_unionid, resolve_person  # noqa: F401
from wxloop.adapters.dynamo.rulesets import (  # noqa: F401
    RULES_DOC_INLINE_MAX,
    RULES_DOC_MAX,
    RuleVersionConflict,
    current_rule_version,
    get_rule_set,
    put_rule_set,
)
from wxloop.adapters.dynamo.tokens import (  # noqa: F401
    expire_token,
    get_token,
    lease_token,
    release_token_lease,
    store_token,
)
