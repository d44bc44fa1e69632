"""What running a job can come to: the ``Outcome`` record and the exceptions that steer the runner."""

from __future__ import annotations

from dataclasses import dataclass


class PoisonJob(ValueError):
    """The message can never run: not JSON, no id/kind/app_id, unknown kind, or fields of the wrong shape.

    Its message names fields and error types only, never a value (bodies hold personal data).
    """


class JobBusy(RuntimeError):
    """Another worker holds this job's claim: try again after the visibility timeout."""


class NotSendable(RuntimeError):
    """Nothing was sent because WeChat would refuse it; the job ends ``closed:{reason}``, no retry."""

    reason = "window"


class WindowClosed(NotSendable):
    """No customer-service window is open for the person: sending would only earn 45015/45047."""


class Unfollowed(NotSendable):
    """The person has unfollowed the account: a customer-service message would only earn 45015."""

    reason = "unsubscribed"


class NoCredit(NotSendable):
    """The person's subscribe-message counter for the template is at 0: WeChat would answer 43101."""

    reason = "credit"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What running a job came to: ``ok``, ``duplicate``, ``closed``, ``deferred``, ``gave_up``, ``failed``
    (an errcode that retrying will not fix). ``errcode`` when WeChat gave one."""

    status: str
    errcode: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        return self.status if self.errcode is None else f"{self.status}:{self.errcode}"
