from django.apps import AppConfig


class AlloysyncConfig(AppConfig):
    name = "alloysync"
    verbose_name = "Alloy sync"

    def ready(self) -> None:
        from alloysync.health import alloy_check, sync_check
        from scheduler.health import register_health_check

        register_health_check("alloy", alloy_check)
        register_health_check("alloy_sync", sync_check)
