"""API tokens in the admin: make one (its key shown once, on the page answering the add form, and
never again: only its hash is kept), see who has which and when each was last used, revoke.

Registered by ``scheduler.admin`` importing this module. A token's key and hash cannot be edited:
a token is made or revoked, never changed into another.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from scheduler.admin_helpers import site_time
from scheduler.api_tokens import key_new, token_revoke
from scheduler.models import ApiToken

# What get_fields returns, as django-stubs types it.
FieldGroups = list[str | list[str] | tuple[str, ...] | tuple[()]]
#: Who may revoke: whoever may change tokens (a revocation is a change to the token).
REVOKE_PERMISSION = "change"
NEW_KEY_ATTRIBUTE = "_new_key"


class ApiTokenForm(forms.ModelForm[ApiToken]):
    class Meta:
        model = ApiToken
        fields = ["user", "name"]


def token_users_for(request: HttpRequest) -> QuerySet[Any]:
    """Whom ``request.user`` may make a token for: anyone if a superuser, else only themselves.

    A token acts with its user's permissions: making one for another user is acting as them. Only a
    superuser already holds every permission anyone has; anyone else making a token for a superuser
    would gain what they lack (add_apitoken alone must never be a way to everything).
    """
    users = get_user_model().objects.filter(is_active=True)
    if request.user.is_superuser:
        return users
    return users.filter(pk=request.user.pk or 0)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    form = ApiTokenForm
    list_display = ["key_shown", "user", "name", "created", "last_used", "revoked"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["user"]
    search_fields = ["name", "key_prefix", "user__username"]
    actions = ["revoke_tokens"]

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> FieldGroups:
        if obj is None:
            return ["user", "name"]
        return ["key_shown", "user", "name", "created", "last_used", "revoked"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        if obj is None:
            return []
        return ["key_shown", "user", "created", "last_used", "revoked"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "user":
            kwargs["queryset"] = token_users_for(request)
            kwargs.setdefault("initial", request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiToken, form: forms.ModelForm[ApiToken], change: bool) -> None:
        # The form's choices already hold only whom this user may act for; this holds whatever the form.
        if not change and not token_users_for(request).filter(pk=obj.user_id).exists():
            raise PermissionDenied("You may make API tokens only for yourself.")
        if change:
            obj.save(update_fields=["name"])  # only the name may change; the key never does
            return
        # ModelAdmin hands response_add the token, not the key: the key rides on this one instance.
        setattr(obj, NEW_KEY_ATTRIBUTE, key_new(obj))
        obj.save()

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None) -> HttpResponse:
        # The one time the key is shown: in this answer, not in a message (Django's messages travel in
        # a cookie, or the session table, to the next page), and not cached by the browser or a proxy.
        key = getattr(obj, NEW_KEY_ATTRIBUTE, "")
        context = {
            **self.admin_site.each_context(request),
            "title": "Copy the new token's key",
            "token": obj,
            "key": key,
            "changelist_url": reverse("admin:scheduler_apitoken_changelist"),
            "opts": self.opts,
        }
        response = TemplateResponse(request, "admin/scheduler/apitoken/key_once.html", context)
        add_never_cache_headers(response)
        response["Cache-Control"] += ", no-store"
        return response

    @admin.display(description="Key", ordering="key_prefix")
    def key_shown(self, token: ApiToken) -> str:
        return f"{token.key_prefix}…"

    @admin.display(description="Created", ordering="created_at")
    def created(self, token: ApiToken) -> str:
        return site_time(token.created_at)

    @admin.display(description="Last used", ordering="last_used_at")
    def last_used(self, token: ApiToken) -> str:
        return site_time(token.last_used_at) if token.last_used_at else "never"

    @admin.display(description="Revoked", ordering="revoked_at")
    def revoked(self, token: ApiToken) -> str:
        return site_time(token.revoked_at) if token.revoked_at else "no"

    @admin.action(description="Revoke the selected tokens", permissions=[REVOKE_PERMISSION])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = sum(token_revoke(token=token) for token in queryset)
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)
