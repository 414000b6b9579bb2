"""May this user do that: Django's model permissions, reads included, plus the permissions a view's
actions name (``run_job``, ``run_sync``). Anonymous: 401; signed in without the permission: 403."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import DjangoModelPermissions
from rest_framework.request import Request


class ModelPermissions(DjangoModelPermissions):
    """``view_<model>`` to read, ``add``/``change``/``delete`` as DRF's own; a view may name what each
    of its actions needs instead, as ``action_permissions = {"run": ["scheduler.run_job"]}``."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        named: dict[str, list[str]] = getattr(view, "action_permissions", {})
        action = getattr(view, "action", None)
        if action in named:
            return bool(user.has_perms(named[action]))
        return super().has_permission(request, view)
