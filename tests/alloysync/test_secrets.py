"""The Alloy key is a secret: it never reaches logs, sync history, errors or reprs."""

import logging

import pytest

from alloysync.models import SyncRun
from alloysync.sync import SyncConfig, alloy_sync
from config.env_secrets import Secret
from tests.alloysync.helpers import API_KEY, job_item

pytestmark = pytest.mark.django_db


def test_the_alloy_key_never_reaches_logs_history_or_errors(alloy, settings, caplog):
    caplog.set_level(logging.DEBUG)
    for chatty in ("httpx", "httpcore", "alloysync", "scheduler"):
        caplog.set_level(logging.DEBUG, logger=chatty)
    alloy.put_item(job_item(n=1))
    good = alloy_sync(trigger=SyncRun.Trigger.COMMAND).run
    alloy.faults.fail_next(2, status=503)
    retried = alloy_sync(trigger=SyncRun.Trigger.COMMAND).run
    settings.ALLOY_API_KEY = Secret("ffffffff-eeee-4ddd-8ccc-bbbbbbbbbbbb")
    refused = alloy_sync(trigger=SyncRun.Trigger.COMMAND).run
    assert (good.status, retried.status, refused.status) == ("succeeded", "succeeded", "failed")
    texts = [caplog.text, *(run.message for run in SyncRun.objects.all()), repr(SyncConfig.from_settings())]
    for text in texts:
        assert API_KEY not in text
        assert "ffffffff-eeee-4ddd-8ccc-bbbbbbbbbbbb" not in text
    assert "HTTP Request" in caplog.text  # the client's requests were logged, without the key
