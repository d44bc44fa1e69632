"""Official Account push endpoint: GET|POST /wechat/oa/{app_id} (HTTP API, payload v2.0).

The handler is the push seam's (``wxloop.services.webhook``): decode the event, answer through
``oa_push.handle``, count the outcome, 500 when nothing was kept. At INIT it loads the accounts config, so
a wrong config fails the start. No event-handler resolver here: one route, and its import costs ~60 ms of
cold start.
"""

from wxloop import snapstart  # noqa: F401 - registers the SnapStart priming hook
from wxloop.services import oa_push
from wxloop.services.webhook import push_handler

lambda_handler = push_handler("oa", oa_push.handle)
