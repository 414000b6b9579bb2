"""A fake Alloy for the sync metrics, as tests/alloysync sets it up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alloysync.fake_alloy import FakeAlloyServer, sample_alloy_settings
from config.env_secrets import Secret
from tests.alloysync.helpers import API_KEY


@pytest.fixture
def alloy(settings) -> Iterator[FakeAlloyServer]:
    with FakeAlloyServer(api_key=API_KEY) as server:
        for name, value in sample_alloy_settings(server.url, API_KEY).items():
            setattr(settings, name, value)
        settings.ALLOY_API_KEY = Secret(API_KEY)
        settings.ALLOY_TIMEOUT = 2
        yield server
