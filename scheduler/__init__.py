"""The job engine and the Django project that hosts it."""

# Importing the Celery app here makes `shared_task` bind to it whenever Django starts.
from scheduler.celery import app as celery_app

__all__ = ("celery_app",)
