"""alloysync's URLs, included by the project under ``alloy/``."""

from django.urls import path

from alloysync.webhook import alloy_webhook

app_name = "alloysync"

urlpatterns = [
    path("webhook", alloy_webhook, name="webhook"),
]
