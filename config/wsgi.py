"""The WSGI application (``gunicorn config.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application

from config.env import exit_on_setting_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# A bad setting: its one line, then exit status 4, which gunicorn's arbiter reads as "the app
# failed to load" and stops, rather than restarting a worker that cannot boot over and over.
with exit_on_setting_error(status=4):
    application = get_wsgi_application()
