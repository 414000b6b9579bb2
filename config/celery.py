"""The Celery application: configuration comes from Django settings (the ``CELERY_`` block)."""

import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging

from config.env import exit_on_setting_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("alloysync")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _load_django_settings(**kwargs: Any) -> None:
    """Load Django's settings and apps before Celery reads them, so that a bad one is its one line and exit 2.

    Celery configures itself lazily, first inside its command line's option defaults (worker, beat,
    inspect, flower), where an exception would print a long traceback. In a process whose settings
    are already loaded (web, tests) this does nothing.
    """
    import django
    from django.apps import apps
    from django.conf import settings

    with exit_on_setting_error():
        settings.INSTALLED_APPS  # noqa: B018 - the attribute access loads the settings module
        # The apps too (Celery's Django fixup would, later and outside this guard): a job module
        # in JOB_MODULES that fails to import is one line as well.
        if not apps.ready and not apps.loading:
            django.setup()


@setup_logging.connect
def _keep_django_logging(**kwargs: Any) -> None:
    """Log in worker and beat processes as settings say (LOG_LEVEL, LOG_FORMAT: Django's LOGGING).

    Without a receiver for this signal Celery configures logging itself and sets the root level to
    its ``--loglevel`` (default WARNING), whatever LOG_LEVEL says: a worker started as the README
    starts it logged none of its tasks' INFO lines (runs ended, syncs recorded). With one, Celery
    leaves logging alone, and ``--loglevel`` no longer matters.
    """
    from logging.config import dictConfig

    from django.conf import settings

    with exit_on_setting_error():
        dictConfig(settings.LOGGING)
