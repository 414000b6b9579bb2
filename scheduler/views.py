from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from scheduler.health import UnknownHealthCheck, run_health_checks


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every check passes, 503 otherwise; open to load balancers, no login.

    ``?checks=database,broker`` limits it to those checks (a container's own health).
    """
    names = [name for name in request.GET.get("checks", "").split(",") if name]
    try:
        healthy, checks = run_health_checks(names)
    except UnknownHealthCheck as exc:
        return JsonResponse({"status": "error", "error": str(exc)}, status=400)
    return JsonResponse({"status": "ok" if healthy else "unhealthy", "checks": checks}, status=200 if healthy else 503)
