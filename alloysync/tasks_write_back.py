"""Celery tasks that write each job's state back onto its Alloy item (filled by the write-back work)."""
