"""Celery tasks that read the items Alloy's workflows named (filled by the webhook work)."""
