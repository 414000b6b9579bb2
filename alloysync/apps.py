from django.apps import AppConfig


class AlloysyncConfig(AppConfig):
    name = "alloysync"
    verbose_name = "Alloy sync"

    def ready(self) -> None:
        from alloysync.health import alloy_check, sync_check
        from alloysync.retention import sync_runs_prune
        from scheduler.events import job_state_changed
        from scheduler.health import register_health_check
        from scheduler.retention import register_pruner

        register_health_check("alloy", alloy_check)
        register_health_check("alloy_sync", sync_check)
        # Every prune (the daily beat entry, manage.py prune_history) prunes sync records too.
        register_pruner("sync records", sync_runs_prune)
        # A run finished, a job paused or resumed: its Alloy item's state is to be written.
        job_state_changed.connect(_mark_jobs_to_write, dispatch_uid="alloysync-write-back-mark")


def _mark_jobs_to_write(
    sender: object, job_ids: list[int], sources: dict[int, str] | None = None, **kwargs: object
) -> None:
    if sources is not None:
        # The runner says which jobs are Alloy's: a local job has no item to write, and costs no query.
        job_ids = [job_id for job_id in job_ids if sources.get(job_id, "alloy") == "alloy"]
    if not job_ids:
        return
    from alloysync.write_back import write_back_mark_jobs

    write_back_mark_jobs(job_ids)
