from django.apps import AppConfig
from django.conf import settings


class SchedulerConfig(AppConfig):
    name = "scheduler"
    verbose_name = "Scheduled jobs"

    def ready(self) -> None:
        from scheduler import registry, signals

        registry.load_job_modules(settings.JOB_MODULES)
        signals.connect()
