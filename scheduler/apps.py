from django.apps import AppConfig
from django.conf import settings


class SchedulerConfig(AppConfig):
    name = "scheduler"
    verbose_name = "Scheduled jobs"

    def ready(self) -> None:
        from django.contrib import admin

        from scheduler import alert_admin, health, registry, signals

        registry.load_job_modules(settings.JOB_MODULES)
        signals.connect()
        health.register_health_check("database", health.database_check)
        health.register_health_check("broker", health.broker_check)
        health.register_health_check("beat", health.beat_check)
        alert_admin.register(admin.site)
