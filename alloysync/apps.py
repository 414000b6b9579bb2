from django.apps import AppConfig


class AlloysyncConfig(AppConfig):
    name = "alloysync"
    verbose_name = "Alloy sync"
