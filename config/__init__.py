"""The deployable project: settings, the Celery app, urls and wsgi; the only package that knows every app."""

# Importing the Celery app here makes `shared_task` bind to it whenever Django starts.
from config.celery import app as celery_app

__all__ = ("celery_app",)
