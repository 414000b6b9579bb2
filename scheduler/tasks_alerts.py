"""Celery tasks that send alerts: a thin interface over scheduler.alert_channels."""

from __future__ import annotations

import logging

from celery import shared_task

from scheduler.alert_channels import AlertNotSent, alert_send, alerts_send_pending
from scheduler.alerts import SEND_ALERT_TASK

logger = logging.getLogger(__name__)

# One try waits at most the webhook's deadline and the mail's timeout (10 s each: ATTEMPT_WORST_SECONDS);
# past these limits it hangs somewhere unforeseen. The soft limit raises in the task (the claim's lease
# is dropped, the try was already counted); the hard one kills the process. The sweep starts no send
# after SWEEP_START_BUDGET (10 s), so it ends within about 30 s. Either holds a worker process 40 s at most.
SEND_SOFT_TIME_LIMIT = 30
SEND_TIME_LIMIT = 40
SWEEP_SOFT_TIME_LIMIT = 35
SWEEP_TIME_LIMIT = 40


# Retried with exponential backoff and jitter: about 5, 10, 20, 40, 80 s (each up to that, at random),
# then left to beat's sweep, which tries every minute up to ALERT_MAX_ATTEMPTS. Celery's own log line
# for a failed try quotes AlertNotSent, whose message never holds the webhook's URL.
@shared_task(
    name=SEND_ALERT_TASK,
    soft_time_limit=SEND_SOFT_TIME_LIMIT,
    time_limit=SEND_TIME_LIMIT,
    autoretry_for=(AlertNotSent,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def send_alert(alert_id: int) -> str:
    """Send one recorded alert on every configured channel that does not have it yet."""
    delivery = alert_send(alert_id)
    if delivery.failed:
        raise AlertNotSent(f"alert {alert_id}: " + "; ".join(f"{k}: {v}" for k, v in delivery.failed.items()))
    return f"sent on {', '.join(delivery.sent)}" if delivery.sent else "nothing to send"


@shared_task(name="scheduler.send_alerts", soft_time_limit=SWEEP_SOFT_TIME_LIMIT, time_limit=SWEEP_TIME_LIMIT)
def send_alerts() -> int:
    """Beat's sweep (every 60 s): alerts a worker never got, or could not send, tried again."""
    sent = alerts_send_pending()
    if sent:
        logger.info("scheduler.send_alerts: %d alert(s) sent", sent)
    return sent
