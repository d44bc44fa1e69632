"""Least privilege, read from template.yaml: every grant names the code that needs it, nothing is granted on
"*" that AWS can scope, each function writes only the key prefixes it owns, app secrets reach only the
functions that fetch tokens, and every function logs into a log group with a retention.

Adding an action to a role makes ``test_every_grant_is_used`` fail until ``USES`` says which code needs it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest

from devstack.table import load_template

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]

# (action, resource, partition-key prefix or None) -> "module:function" that makes the call (checked to
# exist), and why. The resource is the logical id a statement points at (``Table``, ``JobsQueue``...).
R = "wxloop.adapters.repository"
C = "wxloop.adapters.dynamo.campaigns"
USES: dict[str, dict[tuple[str, str, str | None], str]] = {
    "OaWebhookRole": {
        ("logs:CreateLogStream", "OaWebhookLogGroup", None): "Lambda runtime: its own log group",
        ("logs:PutLogEvents", "OaWebhookLogGroup", None): "Lambda runtime: its own log group",
        ("dynamodb:UpdateItem", "Table", "ID#"): f"{R}:touch_identity (also store_reply, leave_outbox)",
        ("dynamodb:PutItem", "Table", "ID#"): f"{R}:create_identity (transaction Put of the identity)",
        ("dynamodb:PutItem", "Table", "USER#"): f"{R}:create_identity (transaction Put of the person)",
        ("dynamodb:PutItem", "Table", "PUSHQ#"): "wxloop.adapters.dynamo.query_bindings:bind_query (plain mode)",
        ("dynamodb:GetItem", "Table", "USER#"): f"{R}:get_person (a reply with the person's values)",
        ("dynamodb:GetItem", "Table", "RULES#"): f"{R}:current_rule_version (and get_rule_set: rules cache)",
        ("sqs:SendMessage", "JobsQueue", None): "wxloop.adapters.queue:send (and send_many)",
        ("secretsmanager:GetSecretValue", "AccountsSecretArn", None): "wxloop.config:load_config",
    },
    "MpWebhookRole": {
        ("logs:CreateLogStream", "MpWebhookLogGroup", None): "Lambda runtime: its own log group",
        ("logs:PutLogEvents", "MpWebhookLogGroup", None): "Lambda runtime: its own log group",
        ("dynamodb:UpdateItem", "Table", "ID#"): f"{R}:touch_identity (also leave_outbox)",
        ("dynamodb:PutItem", "Table", "ID#"): f"{R}:create_identity (transaction Put of the identity)",
        ("dynamodb:PutItem", "Table", "USER#"): f"{R}:create_identity (transaction Put of the person)",
        ("dynamodb:PutItem", "Table", "PUSHQ#"): "wxloop.adapters.dynamo.query_bindings:bind_query (plain mode)",
        ("dynamodb:GetItem", "Table", "USER#"): f"{R}:get_person (a reply with the person's values)",
        ("dynamodb:GetItem", "Table", "RULES#"): f"{R}:current_rule_version (and get_rule_set: rules cache)",
        ("sqs:SendMessage", "JobsQueue", None): "wxloop.adapters.queue:send (and send_many)",
        ("secretsmanager:GetSecretValue", "AccountsSecretArn", None): "wxloop.config:load_config",
    },
    "StreamRole": {
        ("logs:CreateLogStream", "StreamLogGroup", None): "Lambda runtime: its own log group",
        ("logs:PutLogEvents", "StreamLogGroup", None): "Lambda runtime: its own log group",
        ("dynamodb:DescribeStream", "Table/stream/*", None): "event source mapping on the table's stream",
        ("dynamodb:GetRecords", "Table/stream/*", None): "event source mapping on the table's stream",
        ("dynamodb:GetShardIterator", "Table/stream/*", None): "event source mapping on the table's stream",
        ("dynamodb:ListStreams", "Table/stream/*", None): "event source mapping on the table's stream",
        ("dynamodb:PutItem", "Table", "USER#"): f"{R}:put_journey_event",
        ("dynamodb:PutItem", "Table", "ID#"): f"{R}:apply_subscribe_event (the SUBEV# marker)",
        ("dynamodb:UpdateItem", "Table", "ID#"): f"{R}:apply_subscribe_event (the SUB# counters)",
        ("dynamodb:UpdateItem", "Table", "USER#"): "wxloop.adapters.mp_store:mirror_follow (OA follow state; "
                                                   "people.put_engagement: the engagement profile)",
        ("dynamodb:GetItem", "Table", "CODE#"): "wxloop.adapters.dynamo.referrals:get_code (a follow by QR)",
        ("dynamodb:GetItem", "Table", "REF#"): "wxloop.adapters.dynamo.referrals:get_referral",
        ("dynamodb:GetItem", "Table", "REWARDS#"): "wxloop.adapters.dynamo.rewards:get_reward_config",
        ("dynamodb:GetItem", "Table", "CHANNEL#"): "wxloop.adapters.dynamo.channels:get_channel",
        ("dynamodb:GetItem", "Table", "USER#"): "wxloop.adapters.dynamo.rewards:person_points (and facts; "
                                                "people.get_engagement)",
        ("dynamodb:GetItem", "Table", "ID#"): "wxloop.services.rewards:facts (first contact per app)",
        ("dynamodb:PutItem", "Table", "REF#"): "wxloop.adapters.dynamo.referrals:put_referral",
        ("dynamodb:PutItem", "Table", "RCAP#"): "wxloop.adapters.dynamo.rewards:apply_reward (granted with the updates)",
        ("dynamodb:PutItem", "Table", "CHANNEL#"): "wxloop.adapters.dynamo.channels:count (granted with the updates)",
        ("dynamodb:UpdateItem", "Table", "REF#"): "wxloop.adapters.dynamo.referrals:add_active_day (apply_reward)",
        ("dynamodb:UpdateItem", "Table", "RCAP#"): "wxloop.adapters.dynamo.rewards:apply_reward (cap counters)",
        ("dynamodb:UpdateItem", "Table", "CHANNEL#"): "wxloop.adapters.dynamo.channels:count",
        ("sqs:SendMessage", "JobsQueue", None): "wxloop.adapters.queue:send_many (the jobs a push left)",
        ("sqs:SendMessage", "StreamFailureQueue", None): "event source mapping's on-failure destination",
        ("firehose:PutRecordBatch", "LakeDeliveryStream", None): "wxloop.analytics.lake:FirehoseWriter",
    },
    "WorkerRole": {
        ("logs:CreateLogStream", "WorkerLogGroup", None): "Lambda runtime: its own log group",
        ("logs:PutLogEvents", "WorkerLogGroup", None): "Lambda runtime: its own log group",
        ("sqs:ReceiveMessage", "JobsQueue", None): "event source mapping on the jobs queue",
        ("sqs:DeleteMessage", "JobsQueue", None): "event source mapping on the jobs queue",
        ("sqs:GetQueueAttributes", "JobsQueue", None): "event source mapping on the jobs queue",
        ("sqs:SendMessage", "JobsQueue", None): "wxloop.adapters.queue:send (re-queued and deferred jobs)",
        ("sqs:ChangeMessageVisibility", "JobsQueue", None): "wxloop.services.jobs:delay_retry",
        ("dynamodb:GetItem", "Table", "ID#"): f"{R}:get_identity (cs_send, link_unionid)",
        ("dynamodb:GetItem", "Table", "JOB#"): f"{R}:get_job",
        ("dynamodb:GetItem", "Table", "QUOTA#"): f"{R}:quota_blocked_until",
        ("dynamodb:GetItem", "Table", "TOKEN#"): f"{R}:get_token",
        ("dynamodb:GetItem", "Table", "UNION#"): f"{R}:link_unionid (the union item)",
        ("dynamodb:GetItem", "Table", "USER#"): f"{R}:get_person (link_unionid's merge)",
        ("dynamodb:UpdateItem", "Table", "ID#"): f"{R}:spend_cs_window (windows, credits, closed channels, "
                                                 "touch_identity of a queued push, unionid repoints)",
        ("dynamodb:UpdateItem", "Table", "JOB#"): f"{R}:claim_job (release_job, finish_job)",
        ("dynamodb:UpdateItem", "Table", "QUOTA#"): f"{R}:block_quota",
        ("dynamodb:UpdateItem", "Table", "TOKEN#"): f"{R}:lease_token (store, release, expire)",
        ("dynamodb:UpdateItem", "Table", "USER#"): f"{R}:link_unionid (claim and merge updates of persons; "
                                                   "people.record_push of a campaign send or mass tag batch)",
        ("dynamodb:UpdateItem", "Table", "CAMPAIGN#"): f"{C}:record_send_result (a transaction; pause_run; "
                                                       "mass_sends.mark_tagged, claim_tag, begin_send)",
        ("dynamodb:BatchGetItem", "Table", "USER#"): f"{C}:live_people (campaign_mass: erased people not tagged)",
        ("dynamodb:GetItem", "Table", "CAMPAIGN#"): "wxloop.adapters.dynamo.mass_sends:state (campaign_mass; "
                                                    "the campaign's document when the last batch queues the send)",
        ("dynamodb:ConditionCheckItem", "Table", "USER#"): f"{C}:record_send_result (the person is not erased); "
                                                           "merges:merge_items (consent records unchanged)",
        ("dynamodb:PutItem", "Table", "USER#"): f"{R}:create_identity (a queued first push)",
        ("dynamodb:PutItem", "Table", "ID#"): f"{R}:create_identity (a queued first push)",
        ("dynamodb:PutItem", "Table", "UNION#"): f"{R}:link_unionid (a new union item)",
        ("dynamodb:GetItem", "Table", "TAGS#"): "wxloop.adapters.mp_store:get_tag_id (tag_topics jobs)",
        ("dynamodb:PutItem", "Table", "TAGS#"): "wxloop.adapters.mp_store:put_tag_id (tag_topics jobs)",
        ("dynamodb:ConditionCheckItem", "Table", "UNION#"): "wxloop.adapters.dynamo.merges:merge_items (the union names the survivor)",
        ("dynamodb:Query", "Table", "USER#"): "wxloop.adapters.dynamo.merges:consent_of (both persons' consent)",
        ("dynamodb:UpdateItem", "Table", "UNION#"): "wxloop.adapters.dynamo.merges:merge_items (a stale union moves)",
        ("secretsmanager:GetSecretValue", "AccountsSecretArn", None): "wxloop.config:load_config",
        ("secretsmanager:GetSecretValue", "AppSecretsSecretArn", None): "wxloop.adapters.wechat:api_client",
        ("dynamodb:GetItem", "Table", "REWARDS#"): "wxloop.adapters.dynamo.rewards:get_reward_config (reward_notice)",
        ("dynamodb:Query", "Table/index/gsi1", "CHANNELS"): "wxloop.adapters.dynamo.channels:list_channels (renewals due)",
        ("dynamodb:GetItem", "Table", "CHANNEL#"): "wxloop.adapters.dynamo.channels:get_channel (channel_renew)",
        ("dynamodb:UpdateItem", "Table", "CHANNEL#"): "wxloop.adapters.dynamo.channels:replace_link (channel_renew)",
    },
    "CampaignsRole": {
        ("logs:CreateLogStream", "CampaignsLogGroup", None): "Lambda runtime: its own log group",
        ("logs:PutLogEvents", "CampaignsLogGroup", None): "Lambda runtime: its own log group",
        ("dynamodb:Scan", "Table", None): f"{C}:scan_people (parallel scan segments)",
        ("dynamodb:BatchGetItem", "Table", "ID#"): f"{C}:get_items (identities and credits of members)",
        ("dynamodb:BatchGetItem", "Table", "USER#"): f"{C}:live_people (the release skips erased people)",
        ("dynamodb:GetItem", "Table", "CAMPAIGN#"): f"{C}:get_run (get_campaign_doc, active_runs)",
        ("dynamodb:PutItem", "Table", "CAMPAIGN#"): f"{C}:put_bucket (start_run, put_campaign)",
        ("dynamodb:UpdateItem", "Table", "CAMPAIGN#"): f"{C}:checkpoint (add_counts, start_run's active list)",
        ("dynamodb:DeleteItem", "Table", "CAMPAIGN#"): f"{C}:drop_bucket",
        ("dynamodb:Query", "Table", "CAMPAIGN#"): f"{C}:due_buckets (has_buckets, latest_run)",
        ("dynamodb:GetItem", "Table", "QUOTA#"): "wxloop.adapters.dynamo.jobs:quota_blocked_until",
        ("sqs:ReceiveMessage", "PlanQueue", None): "event source mapping on the plan queue",
        ("sqs:DeleteMessage", "PlanQueue", None): "event source mapping on the plan queue",
        ("sqs:GetQueueAttributes", "PlanQueue", None): "event source mapping on the plan queue",
        ("sqs:SendMessage", "PlanQueue", None): "wxloop.adapters.queue:send_many (segment tasks)",
        ("sqs:SendMessage", "JobsQueue", None): "wxloop.adapters.queue:send_many (released sends)",
    },
    "MpApiRole": {
        ("logs:CreateLogStream", "MpApiLogGroup", None): "Lambda runtime: its own log group",
        ("logs:PutLogEvents", "MpApiLogGroup", None): "Lambda runtime: its own log group",
        ("dynamodb:GetItem", "Table", "USER#"): f"{R}:get_person",
        ("dynamodb:GetItem", "Table", "ID#"): f"{R}:get_identity (login, link_unionid)",
        ("dynamodb:GetItem", "Table", "UNION#"): f"{R}:link_unionid (the union item)",
        ("dynamodb:GetItem", "Table", "TOKEN#"): f"{R}:get_token (getuserphonenumber)",
        ("dynamodb:GetItem", "Table", "IDEMP#"): "wxloop.services.mp_api.idempotency:_store",
        ("dynamodb:UpdateItem", "Table", "USER#"): "wxloop.adapters.mp_store:use_person (rate slot + read)",
        ("dynamodb:UpdateItem", "Table", "ID#"): f"{R}:link_unionid (identity repoints; session key)",
        ("dynamodb:UpdateItem", "Table", "TOKEN#"): f"{R}:lease_token (store, release, expire)",
        ("dynamodb:UpdateItem", "Table", "IDEMP#"): "wxloop.services.mp_api.idempotency:_store",
        ("dynamodb:PutItem", "Table", "USER#"): f"{R}:create_identity (the person; put_journey_event)",
        ("dynamodb:PutItem", "Table", "ID#"): f"{R}:create_identity (the MP identity)",
        ("dynamodb:PutItem", "Table", "UNION#"): f"{R}:link_unionid (a new union item)",
        ("dynamodb:PutItem", "Table", "IDEMP#"): "wxloop.services.mp_api.idempotency:_store",
        ("dynamodb:BatchWriteItem", "Table", "USER#"): "wxloop.adapters.mp_store:put_journey_events",
        ("dynamodb:ConditionCheckItem", "Table", "UNION#"): "wxloop.adapters.dynamo.merges:merge_items (the union names the survivor)",
        ("dynamodb:ConditionCheckItem", "Table", "USER#"): "wxloop.adapters.dynamo.merges:merge_items (consent records unchanged)",
        ("dynamodb:Query", "Table", "USER#"): "wxloop.adapters.dynamo.merges:consent_of (both persons' consent)",
        ("dynamodb:UpdateItem", "Table", "UNION#"): "wxloop.adapters.dynamo.merges:merge_items (a stale union moves)",
        ("dynamodb:DeleteItem", "Table", "IDEMP#"): "wxloop.services.mp_api.idempotency:_store",
        ("sqs:SendMessage", "JobsQueue", None): "wxloop.adapters.queue:send (tag sync, follow card)",
        ("dynamodb:GetItem", "Table", "REF#"): "wxloop.adapters.dynamo.referrals:get_referral",
        ("dynamodb:GetItem", "Table", "CODE#"): "wxloop.adapters.dynamo.referrals:get_code",
        ("dynamodb:GetItem", "Table", "REWARDS#"): "wxloop.adapters.dynamo.rewards:get_reward_config",
        ("dynamodb:PutItem", "Table", "REF#"): "wxloop.adapters.dynamo.referrals:put_referral",
        ("dynamodb:PutItem", "Table", "CODE#"): "wxloop.adapters.dynamo.referrals:put_code",
        ("dynamodb:PutItem", "Table", "RCAP#"): "wxloop.adapters.dynamo.rewards:apply_reward (granted with the updates)",
        ("dynamodb:UpdateItem", "Table", "REF#"): "wxloop.adapters.dynamo.rewards:apply_reward",
        ("dynamodb:UpdateItem", "Table", "CODE#"): "wxloop.adapters.dynamo.referrals:put_code (granted with the puts)",
        ("dynamodb:UpdateItem", "Table", "RCAP#"): "wxloop.adapters.dynamo.rewards:apply_reward (cap counters)",
        # (dynamodb:Query on USER#: also rewards.list_ledger, the ledger pages)
        ("dynamodb:Query", "Table/index/gsi1", "INVITER#"): "wxloop.adapters.dynamo.referrals:list_referrals",
        ("dynamodb:PutItem", "Table", "ERASEQ#"): "wxloop.adapters.dynamo.erasure:start (the work item)",
        ("dynamodb:PutItem", "Table", "ERASURE#"): "wxloop.adapters.dynamo.erasure:start (the audit record)",
        ("sqs:SendMessage", "PrivacyQueue", None): "wxloop.services.privacy.erasure:erase (and export requests)",
        ("s3:GetObject", "${ExportBucket.Arn}/exports/*", None): "wxloop.services.privacy.export:location",
        ("secretsmanager:GetSecretValue", "AccountsSecretArn", None): "wxloop.config:load_config",
        ("secretsmanager:GetSecretValue", "AppSecretsSecretArn", None): "wxloop.adapters.wechat:code_to_session",
    },
    "KpiRole": {
        ("logs:CreateLogStream", "KpiLogGroup", None): "Lambda runtime: its own log group",
        ("logs:PutLogEvents", "KpiLogGroup", None): "Lambda runtime: its own log group",
        **{(f"athena:{a}", "athena:workgroup/${KpiWorkGroup}", None): "wxloop.analytics.engines:AthenaEngine"
           for a in ("StartQueryExecution", "GetQueryExecution", "GetQueryResults", "StopQueryExecution")},
        **{(a, r, None): "Athena reads the Glue catalog as the caller (wxloop.analytics.engines:AthenaEngine)"
           for a in ("glue:GetDatabase", "glue:GetTable")
           for r in ("glue:catalog", "glue:database/${LakeDatabase}", "glue:table/${LakeDatabase}/journey",
                     "glue:table/${LakeDatabase}/erased")},
        ("s3:GetObject", "${LakeBucket.Arn}/journey/*", None): "Athena reads the lake as the caller",
        ("s3:GetObject", "${LakeBucket.Arn}/erased/*", None): "Athena reads the erasure list as the caller",
        ("s3:ListBucket", "LakeBucket", None): "Athena lists the lake's partitions as the caller",
        ("s3:GetBucketLocation", "LakeBucket", None): "Athena locates the lake as the caller",
        ("s3:ListBucket", "AthenaResultsBucket", None): "Athena lists its results as the caller",
        ("s3:GetBucketLocation", "AthenaResultsBucket", None): "Athena locates its results as the caller",
        **{(a, "${AthenaResultsBucket.Arn}/results/*", None): "Athena writes query results as the caller"
           for a in ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")},
    },
    "PartnerApiRole": {
        ("logs:CreateLogStream", "PartnerApiLogGroup", None): "Lambda runtime: its own log group",
        ("logs:PutLogEvents", "PartnerApiLogGroup", None): "Lambda runtime: its own log group",
        ("dynamodb:GetItem", "Table", "ID#"): "wxloop.adapters.dynamo.partner:uid_of",
        ("dynamodb:GetItem", "Table", "UNION#"): "wxloop.adapters.dynamo.partner:uid_of",
        ("dynamodb:GetItem", "Table", "USER#"): "wxloop.adapters.dynamo.rewards:person_points",
        ("dynamodb:GetItem", "Table", "REF#"): "wxloop.adapters.dynamo.referrals:get_referral",
        ("dynamodb:GetItem", "Table", "REWARDS#"): "wxloop.adapters.dynamo.rewards:get_reward_config",
        ("dynamodb:GetItem", "Table", "PIDEM#"): "wxloop.adapters.dynamo.partner:claim_request",
        ("dynamodb:PutItem", "Table", "PNONCE#"): "wxloop.adapters.dynamo.partner:use_nonce",
        ("dynamodb:PutItem", "Table", "PIDEM#"): "wxloop.adapters.dynamo.partner:claim_request",
        ("dynamodb:PutItem", "Table", "USER#"): "wxloop.adapters.dynamo.rewards:apply_reward (the ledger entry)",
        ("dynamodb:UpdateItem", "Table", "REF#"): "wxloop.adapters.dynamo.rewards:apply_reward",
        ("dynamodb:UpdateItem", "Table", "USER#"): "wxloop.adapters.dynamo.rewards:apply_debit (the balance)",
        ("dynamodb:UpdateItem", "Table", "RCAP#"): "wxloop.adapters.dynamo.rewards:apply_reward (cap counters)",
        ("dynamodb:UpdateItem", "Table", "PIDEM#"): "wxloop.adapters.dynamo.partner:settle_request",
        ("dynamodb:DeleteItem", "Table", "PIDEM#"): "wxloop.adapters.dynamo.partner:release_request",
        ("secretsmanager:GetSecretValue", "AccountsSecretArn", None): "wxloop.config:load_config",
    },
    "PrivacyRole": {
        ("logs:CreateLogStream", "PrivacyLogGroup", None): "Lambda runtime: its own log group",
        ("logs:PutLogEvents", "PrivacyLogGroup", None): "Lambda runtime: its own log group",
        **{(a, "Table", p): "wxloop.adapters.dynamo.privacy:holdings (query_partition, get)"
           for a in ("dynamodb:Query", "dynamodb:GetItem")
           for p in ("USER#", "ID#", "UNION#", "REF#", "CODE#", "CAMPAIGN#", "ERASEQ#", "ERASURE#")},
        **{(a, "Table", p): "wxloop.adapters.dynamo.erasure:delete_keys (delete_if_owned, finish)"
           for a in ("dynamodb:BatchWriteItem", "dynamodb:DeleteItem")
           for p in ("USER#", "ID#", "UNION#", "REF#", "CODE#", "CAMPAIGN#", "ERASEQ#")},
        **{("dynamodb:UpdateItem", "Table", p): "wxloop.adapters.dynamo.erasure:unlink (advance, finish)"
           for p in ("USER#", "REF#", "CAMPAIGN#", "ERASEQ#", "ERASURE#")},
        ("dynamodb:GetItem", "Table", "CAMPAIGN#"): f"{C}:campaign_ids (erasure: the campaigns to clear)",
        ("dynamodb:Query", "Table", "CAMPAIGN#"): f"{C}:recent_runs (erasure: drop_from_buckets reads buckets)",
        ("dynamodb:DeleteItem", "Table", "CAMPAIGN#"): f"{C}:drop_sends (erasure; drop_from_buckets)",
        ("dynamodb:UpdateItem", "Table", "CAMPAIGN#"): f"{C}:drop_from_buckets (erasure: a bucket rewritten)",
        ("dynamodb:PutItem", "Table", "ERASEQ#"): "wxloop.adapters.dynamo.erasure:start (retention purge)",
        ("dynamodb:PutItem", "Table", "ERASURE#"): "wxloop.adapters.dynamo.erasure:start (retention purge)",
        ("dynamodb:Scan", "Table", None): "wxloop.adapters.dynamo.privacy:last_activity_by_person",
        **{(a, "PrivacyQueue", None): "event source mapping on the privacy queue"
           for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")},
        ("sqs:SendMessage", "PrivacyQueue", None): "wxloop.services.privacy.erasure:erase (retention purge)",
        ("sqs:SendMessage", "JobsQueue", None): "wxloop.services.privacy.erasure:_untag_jobs",
        **{(a, "${ExportBucket.Arn}/exports/*", None): "wxloop.services.privacy.export:store_object"
           for a in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject")},
        **{(f"athena:{a}", "athena:workgroup/${KpiWorkGroup}", None): "wxloop.services.privacy.athena_lake:AthenaLake"
           for a in ("StartQueryExecution", "GetQueryExecution", "GetQueryResults")},
        **{(a, r, None): "Athena reads the Glue catalog as the caller (wxloop.services.privacy.athena_lake:AthenaLake)"
           for a in ("glue:GetDatabase", "glue:GetTable")
           for r in ("glue:catalog", "glue:database/${LakeDatabase}", "glue:table/${LakeDatabase}/journey",
                     "glue:table/${LakeDatabase}/erased")},
        **{(a, f"${{LakeBucket.Arn}}/{prefix}/*", None): "wxloop.services.privacy.athena_lake:AthenaLake"
           for a in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
           for prefix in ("journey", "erased", "compaction")},
        **{(a, b, None): "wxloop.services.privacy.athena_lake:AthenaLake (list and locate as the caller)"
           for a in ("s3:ListBucket", "s3:GetBucketLocation") for b in ("LakeBucket", "AthenaResultsBucket")},
        **{(a, "${AthenaResultsBucket.Arn}/results/*", None): "Athena writes query results as the caller"
           for a in ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")},
        ("secretsmanager:GetSecretValue", "AccountsSecretArn", None): "wxloop.config:load_config",
    },
    "TokenRefresherRole": {
        ("logs:CreateLogStream", "TokenRefresherLogGroup", None): "Lambda runtime: its own log group",
        ("logs:PutLogEvents", "TokenRefresherLogGroup", None): "Lambda runtime: its own log group",
        ("dynamodb:GetItem", "Table", "TOKEN#"): f"{R}:get_token",
        ("dynamodb:UpdateItem", "Table", "TOKEN#"): f"{R}:lease_token (store_token, release_token_lease)",
        ("secretsmanager:GetSecretValue", "AccountsSecretArn", None): "wxloop.config:load_config",
        ("secretsmanager:GetSecretValue", "AppSecretsSecretArn", None): "wxloop.adapters.wechat:refresh_if_due",
        ("ec2:CreateNetworkInterface", "ec2:account-region", None): "Lambda in the VPC (fixed egress IP)",
        ("ec2:DeleteNetworkInterface", "ec2:account-region", None): "Lambda in the VPC (fixed egress IP)",
        ("ec2:AssignPrivateIpAddresses", "ec2:account-region", None): "Lambda in the VPC (fixed egress IP)",
        ("ec2:UnassignPrivateIpAddresses", "ec2:account-region", None): "Lambda in the VPC (fixed egress IP)",
        ("ec2:DescribeNetworkInterfaces", "*", None): "Lambda in the VPC (fixed egress IP)",
    },
}
# Granted to every role while tracing is Active (Lambda's runtime sends the segments).
TRACING = {("xray:PutTraceSegments", "*", None), ("xray:PutTelemetryRecords", "*", None)}
# Actions AWS authorizes only on "*" (no resource-level permission exists): the only ones allowed there.
STAR_ONLY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "ec2:DescribeNetworkInterfaces"}
# Item-level DynamoDB actions: each grant must carry a dynamodb:LeadingKeys condition.
ITEM_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                "dynamodb:ConditionCheckItem", "dynamodb:Query", "dynamodb:BatchGetItem",
                "dynamodb:BatchWriteItem"}
FUNCTION_ROLES = {"OaWebhookFunction": "OaWebhookRole", "MpWebhookFunction": "MpWebhookRole", "StreamFunction": "StreamRole",
                  "WorkerFunction": "WorkerRole", "TokenRefresherFunction": "TokenRefresherRole",
                  "MpApiFunction": "MpApiRole", "KpiFunction": "KpiRole",
                  "PartnerApiFunction": "PartnerApiRole", "PrivacyFunction": "PrivacyRole",
                  "CampaignsFunction": "CampaignsRole"}
# Roles an AWS service assumes (not a function): Firehose writes the lake with LakeDeliveryRole.
SERVICE_ROLES = {"LakeDeliveryRole"}
TOKEN_FETCHERS = {"WorkerFunction", "TokenRefresherFunction", "MpApiFunction"}
# SAM function properties that grant or widen permissions beside the function's own role.
SAM_FUNCTION_GRANTS = ("Policies", "Connectors", "PermissionsBoundary", "RolePath", "AssumeRolePolicyDocument")
# What a role may say: its trust and inline policies (read above). A boundary or managed policy is refused.
ROLE_PROPERTIES = {"Description", "AssumeRolePolicyDocument", "Policies", "Path", "Tags", "RoleName",
                   "MaxSessionDuration"}


def is_grant_resource(resource_type: str) -> bool:
    """Whether a resource of this type can grant permissions to a principal (IAM, SAM connectors)."""
    return resource_type.startswith("AWS::IAM::") or resource_type == "AWS::Serverless::Connector"


def _branches(value) -> Iterator:
    """Every value a CloudFormation ``!If`` may take (``AWS::NoValue`` dropped); lists flattened."""
    if isinstance(value, dict) and ("If" in value or "Fn::If" in value):
        _, yes, no = value.get("If") or value["Fn::If"]
        for branch in (yes, no):
            if branch != {"Ref": "AWS::NoValue"}:
                yield from _branches(branch)
    elif isinstance(value, list):
        for v in value:
            yield from _branches(v)
    else:
        yield value


def _resource_name(value) -> str:
    """A statement's resource as a short name: the logical id it points at, or the literal."""
    if value == "*":
        return "*"
    if isinstance(value, dict):
        (tag, arg), = value.items()
        if tag in ("Ref", "GetAtt", "Fn::GetAtt"):
            return (arg if isinstance(arg, str) else ".".join(arg)).removesuffix(".Arn")
        if tag in ("Sub", "Fn::Sub") and isinstance(arg, str):
            if arg == "${Table.Arn}/stream/*":
                return "Table/stream/*"
            if arg == "${Table.Arn}/index/gsi1":
                return "Table/index/gsi1"
            if arg == "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:*/*":
                return "ec2:account-region"
            if "${" in arg and not arg.rstrip("/*").endswith(":"):  # one named resource (or its objects)
                return arg.replace("arn:${AWS::Partition}:", "").replace(":${AWS::Region}:${AWS::AccountId}", "")
    raise AssertionError(f"unrecognised policy resource {value!r}: teach _resource_name what it means")


def statements(role_id: str) -> list[dict]:
    role = RESOURCES[role_id]["Properties"]
    assert not role.get("ManagedPolicyArns"), f"{role_id}: managed policies grant beyond what code uses"
    out = []
    for policy in role.get("Policies") or []:
        out.extend(_branches(policy["PolicyDocument"]["Statement"]))
    return out


def _leading_keys(stmt: dict) -> list[str | None]:
    cond = stmt.get("Condition") or {}
    if not cond:
        return [None]
    assert set(cond) == {"ForAllValues:StringLike"}, f"{stmt.get('Sid')}: condition must be ForAllValues:StringLike"
    keys = cond["ForAllValues:StringLike"]
    assert set(keys) == {"dynamodb:LeadingKeys"}, stmt.get("Sid")
    prefixes = keys["dynamodb:LeadingKeys"]
    # a key prefix ("USER#*") or one exact key ("CHANNELS", a fixed index partition): never a bare wildcard
    assert all((p.endswith("#*") and p.count("*") == 1) or "*" not in p for p in prefixes), \
        f"{stmt.get('Sid')}: prefix# + '*' or an exact key"
    return [p[:-1] if p.endswith("*") else p for p in prefixes]


def grants(role_id: str) -> set[tuple[str, str, str | None]]:
    out = set()
    for stmt in statements(role_id):
        assert stmt["Effect"] == "Allow" and "NotAction" not in stmt and "NotResource" not in stmt, stmt.get("Sid")
        actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
        resources = [_resource_name(r) for r in _branches(stmt["Resource"])]
        for action in actions:
            for resource in resources:
                for prefix in _leading_keys(stmt):
                    out.add((action, resource, prefix))
    return out


def function_env(function_id: str) -> dict:
    env = dict(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"])
    env.update(((RESOURCES[function_id]["Properties"].get("Environment") or {}).get("Variables")) or {})
    return env


def test_every_function_has_its_own_role_and_no_sam_policies():
    """SAM adds managed policies on "*" (logs, SQS polling, stream reading) unless a function brings its role."""
    functions = {k for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}
    assert functions == set(FUNCTION_ROLES)
    assert set(FUNCTION_ROLES.values()) == set(USES), "each role declared in FUNCTION_ROLES has its USES entry"
    for function_id, role_id in FUNCTION_ROLES.items():
        props = RESOURCES[function_id]["Properties"]
        assert props.get("Role") == {"GetAtt": f"{role_id}.Arn"}, function_id
        for grants_more in SAM_FUNCTION_GRANTS:
            assert grants_more not in props, f"{function_id}: {grants_more} grants beyond its role"
        assert RESOURCES[role_id]["Type"] == "AWS::IAM::Role"
        assert set(RESOURCES[role_id]["Properties"]) <= ROLE_PROPERTIES, f"{role_id}: only inline Policies"
    assert not set(TEMPLATE["Globals"]["Function"]) & {*SAM_FUNCTION_GRANTS, "Role"}, "Globals grant nothing"


def test_no_grant_outside_the_declared_roles():
    """Any IAM resource (an ``AWS::IAM::RolePolicy`` attached to a role, a user, a group, a managed policy...)
    or a SAM connector grants beside the roles these tests read: only the declared roles may exist."""
    iam = {k for k, v in RESOURCES.items() if is_grant_resource(v["Type"])}
    declared = set(FUNCTION_ROLES.values()) | SERVICE_ROLES
    assert iam == declared, f"grants outside the checked roles: {sorted(iam - declared)}"


@pytest.mark.parametrize("role_id", sorted(USES))
def test_every_grant_is_used(role_id):
    granted = grants(role_id) - TRACING
    unused = granted - set(USES[role_id])
    assert not unused, f"{role_id} grants what no code uses (or USES lacks the reason): {sorted(unused, key=str)}"
    missing = set(USES[role_id]) - granted
    assert not missing, f"{role_id} lacks what the code needs: {sorted(missing, key=str)}"


def test_every_reason_names_real_code():
    for uses in USES.values():
        for reason in uses.values():
            ref = reason.split(" ", 1)[0]
            if ":" not in ref or ref.startswith(("Lambda", "event")):
                continue
            module, attr = ref.split(":")
            assert callable(getattr(importlib.import_module(module), attr, None)), f"{ref} does not exist"


@pytest.mark.parametrize("role_id", sorted(USES))
def test_nothing_on_star_that_aws_can_scope(role_id):
    for action, resource, _ in grants(role_id):
        assert "*" not in action, f"{role_id}: wildcard action {action}"
        if resource == "*":
            assert action in STAR_ONLY, f"{role_id}: {action} on '*'"


@pytest.mark.parametrize("role_id", sorted(USES))
def test_item_actions_are_limited_to_key_prefixes(role_id):
    for action, resource, prefix in grants(role_id):
        if action in ITEM_ACTIONS:
            assert resource in ("Table", "Table/index/gsi1") and prefix, f"{role_id}: {action} without LeadingKeys"


@pytest.mark.parametrize("role_id", ["OaWebhookRole", "MpWebhookRole"])
def test_the_webhook_writes_only_identities_and_persons(role_id):
    writes = {(a, p) for a, _, p in grants(role_id) if a in ITEM_ACTIONS - {"dynamodb:GetItem"}}
    assert {p for _, p in writes} == {"ID#", "USER#", "PUSHQ#"}  # PUSHQ#: plain-mode query bindings
    for owned_elsewhere in ("TOKEN#", "RULES#", "JOB#", "QUOTA#", "UNION#"):
        assert all(p != owned_elsewhere for _, p in writes)


def test_unused_actions_are_gone():
    """TransactWriteItems (not an IAM action: transactions are authorized item by item) is granted to nobody;
    Scan only to the privacy role (the daily retention scan); Query only on persons (merges read both
    persons' consent; the MP API lists a ledger), on the inviter index (my invites) and the channel list
    (renewals due), and to the privacy role (a person's partitions). The campaign planner scans people (parallel scan segments) and queries only
    its own CAMPAIGN# items."""
    every = set().union(*(grants(r) for r in USES if r not in ("PrivacyRole", "CampaignsRole")))
    assert not {a for a, _, _ in every} & {"dynamodb:TransactWriteItems", "dynamodb:Scan"}
    assert "dynamodb:TransactWriteItems" not in {a for a, _, _ in grants("PrivacyRole")}
    queries = {(r, p) for a, r, p in every if a == "dynamodb:Query"}
    assert queries <= {("Table", "USER#"), ("Table/index/gsi1", "INVITER#"), ("Table/index/gsi1", "CHANNELS")}
    planner = grants("CampaignsRole")
    assert {p for a, _, p in planner if a == "dynamodb:Query"} == {"CAMPAIGN#"}
    assert "dynamodb:TransactWriteItems" not in {a for a, _, _ in planner}


def test_the_demo_campaign_is_scheduled_in_shanghai_time_and_the_tick_releases_buckets():
    import json

    events = RESOURCES["CampaignsFunction"]["Properties"]["Events"]
    weekly = events["DormantBackWeekly"]["Properties"]
    assert events["DormantBackWeekly"]["Type"] == "ScheduleV2"  # SAM makes it an AWS::Scheduler::Schedule
    assert weekly["ScheduleExpressionTimezone"] == "Asia/Shanghai"
    assert json.loads(weekly["Input"])["campaign"] == "dormant-back"
    assert json.loads(events["ReleaseTick"]["Properties"]["Input"]) == {"action": "release"}


def _rule_value(expr, params: dict):
    """A CloudFormation rule expression's value for ``params`` (the few functions rules allow, as used here)."""
    if not isinstance(expr, dict):
        return [_rule_value(e, params) for e in expr] if isinstance(expr, list) else expr
    (tag, arg), = expr.items()
    tag = tag.removeprefix("Fn::")
    if tag == "Ref":
        return params[arg]
    args = _rule_value(arg, params)
    return {"Equals": lambda: args[0] == args[1], "Not": lambda: not args[0], "And": lambda: all(args),
            "Or": lambda: any(args), "Contains": lambda: args[1] in args[0]}[tag]()


def _rules_refuse(params: dict) -> list[str]:
    """The names of the template's rules whose assertions fail for ``params`` (defaults filled in)."""
    values = {k: v.get("Default") for k, v in TEMPLATE["Parameters"].items()} | params
    return [name for name, rule in (TEMPLATE.get("Rules") or {}).items()
            if _rule_value(rule.get("RuleCondition", True), values)
            and not all(_rule_value(a["Assert"], values) for a in rule["Assertions"])]


@pytest.mark.parametrize("stage, arn, refused", [
    ("prod", "", True), ("staging", "", True), ("dev", "", False),
    ("prod", "arn:aws:secretsmanager:cn-north-1:1:secret:app", False),
    ("staging", "arn:aws:secretsmanager:cn-north-1:1:secret:app", False),
])
def test_staging_and_prod_cannot_deploy_without_the_app_secrets_secret(stage, arn, refused):
    """Otherwise the app secrets stay in the accounts secret that the internet-facing webhooks read."""
    assert bool(_rules_refuse({"Stage": stage, "AppSecretsSecretArn": arn})) == refused


def test_app_secrets_reach_only_token_fetchers():
    assert TEMPLATE["Parameters"]["AppSecretsSecretArn"].get("Default") == ""
    assert "WECHAT_APP_SECRETS_SECRET" not in TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    for function_id, role_id in FUNCTION_ROLES.items():
        reads = any(r == "AppSecretsSecretArn" for _, r, _ in grants(role_id))
        has_env = "WECHAT_APP_SECRETS_SECRET" in function_env(function_id)
        assert reads == has_env == (function_id in TOKEN_FETCHERS), function_id


@pytest.mark.parametrize("function_id", sorted(FUNCTION_ROLES))
def test_each_function_logs_to_a_log_group_with_retention(function_id):
    log_ref = RESOURCES[function_id]["Properties"]["LoggingConfig"]["LogGroup"]
    group_id = log_ref["Ref"]
    group = RESOURCES[group_id]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert TEMPLATE["Parameters"]["LogRetentionDays"]["Default"] == 30
    log_grants = {(a, r) for a, r, _ in grants(FUNCTION_ROLES[function_id]) if a.startswith("logs:")}
    assert log_grants == {("logs:CreateLogStream", group_id), ("logs:PutLogEvents", group_id)}


def test_a_grant_on_star_fails_the_check(monkeypatch):
    """The checks above can fail: a statement on "*" or an extra action is caught."""
    doc = RESOURCES["OaWebhookRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    extra = {"Effect": "Allow", "Action": ["sqs:ReceiveMessage"], "Resource": "*"}
    monkeypatch.setitem(doc, "Statement", [*doc["Statement"], extra])
    with pytest.raises(AssertionError):
        test_nothing_on_star_that_aws_can_scope("OaWebhookRole")
    with pytest.raises(AssertionError):
        test_every_grant_is_used("OaWebhookRole")


STAR_STAR = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@pytest.mark.parametrize("logical_id, resource", [
    ("Backdoor", {"Type": "AWS::IAM::RolePolicy", "Properties": {
        "RoleName": {"Ref": "OaWebhookRole"}, "PolicyName": "x", "PolicyDocument": STAR_STAR}}),
    ("Backdoor", {"Type": "AWS::IAM::Policy", "Properties": {
        "Roles": [{"Ref": "OaWebhookRole"}], "PolicyName": "x", "PolicyDocument": STAR_STAR}}),
    ("Backdoor", {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
        "Roles": [{"Ref": "OaWebhookRole"}], "PolicyDocument": STAR_STAR}}),
    ("Conn", {"Type": "AWS::Serverless::Connector", "Properties": {
        "Source": {"Id": "OaWebhookFunction"}, "Destination": {"Id": "Table"}, "Permissions": ["Read", "Write"]}}),
])
def test_a_grant_beside_the_roles_fails_the_check(monkeypatch, logical_id, resource):
    monkeypatch.setitem(RESOURCES, logical_id, resource)
    with pytest.raises(AssertionError):
        test_no_grant_outside_the_declared_roles()


@pytest.mark.parametrize("where, key, value", [
    ("OaWebhookRole", "PermissionsBoundary", "arn:aws:iam::aws:policy/AdministratorAccess"),
    ("OaWebhookRole", "ManagedPolicyArns", ["arn:aws:iam::aws:policy/AdministratorAccess"]),
    ("OaWebhookFunction", "Connectors", {"C": {"Properties": {"Destination": {"Id": "Table"},
                                                              "Permissions": ["Write"]}}}),
    ("OaWebhookFunction", "PermissionsBoundary", "arn:aws:iam::aws:policy/AdministratorAccess"),
    ("OaWebhookFunction", "Policies", ["AdministratorAccess"]),
])
def test_a_boundary_connector_or_policy_on_a_function_or_role_fails_the_check(monkeypatch, where, key, value):
    monkeypatch.setitem(RESOURCES[where]["Properties"], key, value)
    with pytest.raises(AssertionError):
        test_every_function_has_its_own_role_and_no_sam_policies()
