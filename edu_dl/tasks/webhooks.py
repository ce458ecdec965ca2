"""Webhook tasks. Names are stable: a rename breaks messages already queued."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from edu_dl.services.errors import NotFound
from edu_dl.services.webhooks import (
    DELIVER_TASK_NAME,
    MAX_ATTEMPTS,
    RETRY_BACKOFF_MAX_S,
    RETRY_BACKOFF_S,
    SEND_DUE_TASK_NAME,
    WebhookDeliveryFailed,
    webhook_deliver,
    webhook_deliveries_send_due,
)

logger = logging.getLogger(__name__)


@shared_task(
    name=DELIVER_TASK_NAME,
    ignore_result=True,
    # A receiver that answered with an error or not at all may recover, as may a busy database;
    # the service records each attempt and marks the delivery failed at its last one.
    autoretry_for=(WebhookDeliveryFailed, OperationalError),
    retry_backoff=RETRY_BACKOFF_S,
    retry_backoff_max=RETRY_BACKOFF_MAX_S,
    retry_jitter=True,
    max_retries=MAX_ATTEMPTS - 1,
)
def webhook_deliver_task(delivery_id: int) -> None:
    try:
        webhook_deliver(delivery_id=delivery_id)
    except NotFound as error:  # its subscription or course was deleted since
        logger.info("webhook delivery skipped: %s", error.message)


@shared_task(name=SEND_DUE_TASK_NAME, ignore_result=True)
def webhook_send_due_task() -> int:
    return webhook_deliveries_send_due()
