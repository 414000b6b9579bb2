"""Every admin action and admin page that changes or runs something needs its permission.

The tests walk what is registered on the project's admin site (its own admins, django-celery-beat's and
django.contrib.auth's): every action each admin offers, every URL beyond Django's standard ones, and
the add, change and delete pages. A staff user allowed only to view a model can neither see nor run
any of them, even by posting the request directly; a user with the permissions an action names can.
An action or page added later without a permission fails ``test_every_action_and_custom_page_names_a_permission``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from celery.signals import before_task_publish
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core import serializers
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alloysync.models import ItemState, SyncRun
from config import celery_app
from scheduler.api_tokens import token_create
from scheduler.models import RUN_JOB_PERMISSION, Alert, ApiToken, Job, JobRun
from scheduler.services import job_pause

pytestmark = pytest.mark.django_db

SITE = admin.site

# What an action's ``permissions=[...]`` name means, as the auth permission a user needs. Built-in
# names are per model; "run" is the project's own (JobAdmin and PeriodicTaskAdmin ask for it).
PERMISSION_FOR_NAME: dict[str, Callable[[type[Model]], str]] = {
    **{
        name: (lambda model, name=name: f"{model._meta.app_label}.{name}_{model._meta.model_name}")
        for name in ("view", "add", "change", "delete")
    },
    "run": lambda model: RUN_JOB_PERMISSION,
}

# Actions that only read (an export, say) may name just "view"; none does today. Listed by
# (model label, action name), so that a changing action cannot slip in under "view" unnoticed.
READ_ONLY_ACTIONS: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class CustomPage:
    """An admin URL beyond Django's standard ones: the permission it needs, and whether it takes an object id."""

    permission: str
    takes_object: bool


# Every URL an admin adds beyond changelist, add, history, delete and change, by URL name.
CUSTOM_PAGES = {
    # django.contrib.auth's "change password" form for a user.
    "auth_user_password_change": CustomPage("auth.change_user", takes_object=True),
    # A job's own pages, buttons on its change page: pause and resume change it, the runs need "run".
    "scheduler_job_pause": CustomPage("scheduler.change_job", takes_object=True),
    "scheduler_job_resume": CustomPage("scheduler.change_job", takes_object=True),
    "scheduler_job_run": CustomPage(RUN_JOB_PERMISSION, takes_object=True),
    "scheduler_job_run_with_arguments": CustomPage(RUN_JOB_PERMISSION, takes_object=True),
}
STANDARD_MODEL_PAGES = {"changelist", "add", "history", "delete", "change"}
STANDARD_SITE_PAGES = {
    *("index", "login", "logout", "password_change", "password_change_done"),
    *("autocomplete", "jsi18n", "view_on_site", "app_list"),
}


def _superuser_request() -> HttpRequest:
    request = RequestFactory().get("/admin/")
    # Unsaved: has_perm answers True for an active superuser without asking the database.
    request.user = get_user_model()(username="walker", is_staff=True, is_superuser=True, is_active=True)
    return request


def admin_actions(site: admin.AdminSite) -> Iterator[tuple[admin.ModelAdmin[Any], str, Callable[..., Any]]]:
    """Every action every admin on ``site`` has (as a superuser sees them), with its function."""
    request = _superuser_request()
    for model_admin in site._registry.values():
        for name, (function, _name, _description) in model_admin.get_actions(request).items():
            yield model_admin, name, function


def custom_pages(site: admin.AdminSite) -> Iterator[tuple[type[Model] | None, URLPattern]]:
    """Every URL on ``site`` that is not one of Django's standard admin pages, with its model if any."""
    for model, model_admin in site._registry.items():
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        for pattern in model_admin.get_urls():
            if isinstance(pattern, URLPattern) and not _standard_model_page(pattern, prefix):
                yield model, pattern
    for pattern in site.get_urls():
        # Unnamed site-level patterns: the models' includes (walked above) and the final catch-all.
        if isinstance(pattern, URLPattern) and pattern.name and pattern.name not in STANDARD_SITE_PAGES:
            yield None, pattern


def _standard_model_page(pattern: URLPattern, prefix: str) -> bool:
    if pattern.name is None:
        # Django's one unnamed model URL: the old-style object URL that redirects to the change page.
        return str(pattern.pattern) == "<path:object_id>/"
    return pattern.name.startswith(prefix) and pattern.name.removeprefix(prefix) in STANDARD_MODEL_PAGES


def permission_problems(site: admin.AdminSite) -> list[str]:
    """What on ``site`` changes or runs something without naming a permission; empty when all do."""
    problems = []
    for model_admin, name, function in admin_actions(site):
        label = model_admin.model._meta.label
        needed = set(getattr(function, "allowed_permissions", ()))
        if not needed:
            problems.append(f"{label}: action {name!r} names no permission: use @admin.action(permissions=[...])")
        elif needed == {"view"} and (label, name) not in READ_ONLY_ACTIONS:
            problems.append(
                f"{label}: action {name!r} needs only view; if it changes nothing, add to READ_ONLY_ACTIONS"
            )
        for permission in sorted(needed - PERMISSION_FOR_NAME.keys()):
            problems.append(f"{label}: action {name!r} names {permission!r}: add it to PERMISSION_FOR_NAME")
    for model, pattern in custom_pages(site):
        where = model._meta.label if model else "the admin site"
        if pattern.name not in CUSTOM_PAGES:
            problems.append(
                f"{where}: admin URL {str(pattern.pattern)!r} ({pattern.name}) is not in CUSTOM_PAGES: "
                "name it, check the permission it needs in its view, and declare that permission there"
            )
    return problems


ACTIONS = [
    pytest.param(model_admin.model, name, function, id=f"{model_admin.model._meta.label}:{name}")
    for model_admin, name, function in admin_actions(SITE)
]
MODELS = [pytest.param(model, id=model._meta.label) for model in SITE._registry]
PAGES = [pytest.param(model, pattern.name, id=pattern.name) for model, pattern in custom_pages(SITE)]


def needed_permissions(model: type[Model], function: Callable[..., Any]) -> set[str]:
    return {PERMISSION_FOR_NAME[name](model) for name in getattr(function, "allowed_permissions", ())}


def database_snapshot() -> dict[str, str]:
    """Every row of every model as JSON; sessions left out, since logging in writes them."""
    return {
        model._meta.label: serializers.serialize("json", model._default_manager.order_by("pk"))
        for model in apps.get_models()
        if model._meta.label != "sessions.Session"
    }


class Publishes(list[str]):
    """Names of the Celery tasks sent while it is connected: what "ran something" looks like."""

    def record(self, sender: str | None = None, **kwargs: Any) -> None:
        self.append(str(sender))


@pytest.fixture
def publishes() -> Iterator[Publishes]:
    sent = Publishes()
    before_task_publish.connect(sent.record, weak=False)
    yield sent
    before_task_publish.disconnect(sent.record)


@pytest.fixture
def private_queue() -> Iterator[str]:
    """A queue no worker reads: a periodic task run from the admin in a test goes there, then is purged."""
    queue = f"alloysync-test-admin-{uuid.uuid4().hex[:8]}"
    yield queue
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(queue)


@pytest.fixture
def examples(make_job: Callable[..., Job], private_queue: str) -> dict[type[Model], Model]:
    """One row of each model registered in the admin, each deletable on its own (nothing depends on it)."""
    job = make_job(name="walked job")
    job_pause(job=job, note="paused, so that resuming it changes something")
    # A task of no job's: the periodic task list's own enable, disable and toggle work on those only.
    task = PeriodicTask.objects.create(
        name="walked task",
        task="scheduler.reap_lost_runs",
        interval=IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES),
        queue=private_queue,
    )
    with_history = make_job(name="job with history", cron="0 3 * * *")
    now = timezone.now()
    return {
        Job: job,
        JobRun: JobRun.objects.create(job=with_history, trigger=JobRun.Trigger.COMMAND, status="succeeded"),
        Alert: Alert.objects.create(kind=Alert.Kind.values[0], job=job, subject="walked job failing", text="boom"),
        SyncRun: SyncRun.objects.create(trigger="command", status="succeeded", started_at=now, finished_at=now),
        ItemState: ItemState.objects.create(item_id="65f0c1a0e4d0a1b2c3d4e501", dirty_since=now, last_error="HTTP 503"),
        type(task): task,
        CrontabSchedule: CrontabSchedule.objects.create(minute="7", hour="7", timezone="UTC"),
        IntervalSchedule: IntervalSchedule.objects.create(every=10, period=IntervalSchedule.SECONDS),
        SolarSchedule: SolarSchedule.objects.create(event="sunrise", latitude="51.5", longitude="-0.1"),
        ClockedSchedule: ClockedSchedule.objects.create(clocked_time=now),
        get_user_model(): get_user_model().objects.create_user("someone", password="a-long-password-1"),
        Group: Group.objects.create(name="operators"),
        ApiToken: token_create(user=get_user_model().objects.create_user("token owner"), name="walked")[0],
    }


def example_of(examples: dict[type[Model], Model], model: type[Model]) -> Model:
    if model not in examples:
        pytest.fail(f"no example row for {model._meta.label}: add one to the examples fixture")
    return examples[model]


_usernames = itertools.count()


def staff_with(*permissions: str) -> Any:
    """A new staff user holding exactly these permissions ("app_label.codename")."""
    user = get_user_model().objects.create_user(f"staff-{next(_usernames)}", is_staff=True)
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def changelist(model: type[Model]) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def post_action(client: Client, model: type[Model], name: str, row: Model) -> HttpResponse:
    """The action's request as the browser sends it once confirmed, confirmation fields included."""
    data = {"action": name, ACTION_CHECKBOX_NAME: [row.pk], "index": "0", "post": "yes", "apply": "1", "note": "x"}
    response: HttpResponse = client.post(changelist(model), data)
    return response


def test_every_action_and_custom_page_names_a_permission() -> None:
    assert permission_problems(SITE) == []


def test_the_walk_finds_an_action_or_page_added_without_a_permission() -> None:
    def unguarded(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ran")

    class CarelessJobAdmin(admin.ModelAdmin[Job]):
        actions = ["reset_everything"]

        @admin.action(description="Reset everything")
        def reset_everything(self, request: HttpRequest, queryset: Any) -> None: ...

        def get_urls(self) -> list[Any]:
            return [path("<path:object_id>/rerun/", unguarded, name="scheduler_job_rerun"), *super().get_urls()]

    site = admin.AdminSite(name="careless")
    site.register(Job, CarelessJobAdmin)

    problems = permission_problems(site)

    assert problems == [
        "scheduler.Job: action 'reset_everything' names no permission: use @admin.action(permissions=[...])",
        "scheduler.Job: admin URL '<path:object_id>/rerun/' (scheduler_job_rerun) is not in CUSTOM_PAGES: "
        "name it, check the permission it needs in its view, and declare that permission there",
    ]


@pytest.mark.parametrize(("model", "name", "function"), ACTIONS)
def test_a_user_who_may_only_view_can_neither_see_nor_run_an_action(
    model: type[Model],
    name: str,
    function: Callable[..., Any],
    examples: dict[type[Model], Model],
    publishes: Publishes,
) -> None:
    viewer = logged_in(staff_with(PERMISSION_FOR_NAME["view"](model)))
    row = example_of(examples, model)

    page = viewer.get(changelist(model))
    assert page.status_code == 200
    assert f'value="{name}"' not in page.content.decode()

    before = database_snapshot()
    response = post_action(viewer, model, name, row)  # straight to the server, as a script would
    assert response.status_code in (200, 302, 403), response.status_code
    assert database_snapshot() == before
    assert publishes == []


@pytest.mark.parametrize(("model", "name", "function"), ACTIONS)
def test_a_user_with_the_permissions_an_action_names_sees_and_runs_it(
    model: type[Model],
    name: str,
    function: Callable[..., Any],
    examples: dict[type[Model], Model],
    publishes: Publishes,
) -> None:
    operator = logged_in(staff_with(PERMISSION_FOR_NAME["view"](model), *needed_permissions(model, function)))
    row = example_of(examples, model)

    assert f'value="{name}"' in operator.get(changelist(model)).content.decode()

    before = database_snapshot()
    response = post_action(operator, model, name, row)
    assert response.status_code in (200, 302), response.status_code
    assert database_snapshot() != before or publishes, f"{name} changed nothing and sent nothing"


@pytest.mark.parametrize("model", MODELS)
def test_a_user_who_may_only_view_cannot_add_change_or_delete(
    model: type[Model], examples: dict[type[Model], Model]
) -> None:
    viewer = logged_in(staff_with(PERMISSION_FOR_NAME["view"](model)))
    row = example_of(examples, model)
    base = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    before = database_snapshot()

    assert viewer.post(reverse(f"{base}_add"), {}).status_code == 403
    assert viewer.post(reverse(f"{base}_change", args=[row.pk]), {}).status_code == 403
    assert viewer.post(reverse(f"{base}_delete", args=[row.pk]), {"post": "yes"}).status_code == 403
    assert database_snapshot() == before


@pytest.mark.parametrize(("model", "url_name"), PAGES)
def test_a_custom_admin_page_refuses_a_user_who_may_only_view_and_opens_for_its_permission(
    model: type[Model] | None, url_name: str, examples: dict[type[Model], Model], publishes: Publishes
) -> None:
    page = CUSTOM_PAGES[url_name]
    args = [example_of(examples, model).pk] if page.takes_object and model else []
    url = reverse(f"admin:{url_name}", args=args)
    viewer = logged_in(staff_with(PERMISSION_FOR_NAME["view"](model))) if model else logged_in(staff_with())
    before = database_snapshot()

    assert viewer.get(url).status_code == 403
    assert viewer.post(url, {"password1": "Another-long-one-9", "password2": "Another-long-one-9"}).status_code == 403
    assert database_snapshot() == before
    assert publishes == []

    permitted = [page.permission, *([PERMISSION_FOR_NAME["view"](model)] if model else [])]
    assert logged_in(staff_with(*permitted)).get(url).status_code == 200


def _grantable(model: type[Model]) -> list[str]:
    return [*(PERMISSION_FOR_NAME[name](model) for name in ("view", "add", "change", "delete")), RUN_JOB_PERMISSION]


@pytest.mark.parametrize("model", MODELS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_user_sees_exactly_the_actions_whose_permissions_they_hold(
    model: type[Model], examples: dict[type[Model], Model], data: st.DataObject
) -> None:
    example_of(examples, model)  # the list offers actions only when it has rows
    held = data.draw(st.sets(st.sampled_from(_grantable(model))), label="permissions")
    user = staff_with(*held)
    response = logged_in(user).get(changelist(model))

    may_open = {PERMISSION_FOR_NAME["view"](model), PERMISSION_FOR_NAME["change"](model)} & held
    assert response.status_code == (200 if may_open else 403)
    if not may_open:
        return
    page = response.content.decode()
    actions = [(name, function) for m, name, function in admin_actions(SITE) if m.model is model]
    shown = {name for name, _function in actions if f'value="{name}"' in page}
    assert shown == {name for name, function in actions if needed_permissions(model, function) <= held}
