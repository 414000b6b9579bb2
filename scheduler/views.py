from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_cookie

from scheduler.health import UnknownHealthCheck, health_summary, run_health_checks


@never_cache
@vary_on_cookie
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every check passes, 503 otherwise; open to load balancers, no login.

    Anyone gets ``status`` and the names of the ``failing`` checks; logged-in staff also get each
    check's detail under ``checks`` (holders, ages, times), which tell an outsider too much.
    ``?checks=database,broker`` limits it to those checks (a container's own health).
    """
    names = [name for name in request.GET.get("checks", "").split(",") if name]
    try:
        healthy, report = run_health_checks(names)
    except UnknownHealthCheck as exc:
        return JsonResponse({"status": "error", "error": str(exc)}, status=400)
    body = health_summary(healthy, report)
    if request.user.is_active and request.user.is_staff:
        body["checks"] = report
    return JsonResponse(body, status=200 if healthy else 503)
