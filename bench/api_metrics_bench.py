"""API and metrics benchmark: ``GET /api/v1/jobs/`` and ``GET /metrics`` with many jobs and runs on PostgreSQL.

At two sizes in one run, the given one and a tenth of it (``--scale``), so the number of queries can be
seen not to grow with rows: fills a scratch database (``_bulk_data.fill``, SQL ``generate_series``:
minutes for millions of rows; half the jobs from Alloy, 1 in 50 removed there; a sync every 5 minutes
over the runs' 50 days; one item state per Alloy job, 1 in 1,000 waiting for write-back; the counter
rows of a busy deployment), starts gunicorn on it on a free port (DEBUG off, a real API token and
METRICS_TOKEN), and for each URL sends ``--warmup`` requests, then ``--requests`` timed ones over HTTP,
one at a time. The queries a request makes are counted in this process through Django's test client
(``CaptureQueriesContext``), which runs the same views on the same database. Prints median and p95
milliseconds, queries per request, the database's time and the view's CPU time in one request (the
two figures a machine busy with other work inflates least), and PASS or MISS against the 100 ms aim
(p95).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alloysync \\
        python bench/api_metrics_bench.py [--size full|ci] [--jobs N] [--runs N] [--scale 10] \\
            [--requests 50] [--warmup 5] [--explain] [--keep]

``--size full`` (the default) is the issue's 100,000 jobs and 5,000,000 runs, measured after
10,000 and 500,000; ``--size ci`` is 2,000 and 50,000 (after 200 and 5,000). ``--jobs`` and
``--runs`` override either; ``--scale 1`` measures the one size. Runs in throwaway databases
(``<name>_apibench_<jobs>``) that it creates and drops (``--keep``: keeps them and reuses kept ones).
``--explain`` prints EXPLAIN ANALYZE of each SELECT a request makes. Exits 1 when a URL answers other
than 200, or makes more queries at the larger size than at the smaller.
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The same secrets in this process (the test client's requests) and in gunicorn's. The throttle still
# counts every request (the UPDATE it makes is measured); its limit is only raised past the bench's.
METRICS_TOKEN = secrets.token_urlsafe(32)
SERVER_ENV = {
    "METRICS_TOKEN": METRICS_TOKEN,
    "API_RATE_LIMIT": "1000000",
    "DJANGO_DEBUG": "false",
    "DJANGO_SECURE_SSL_REDIRECT": "false",  # plain http on loopback, as behind a TLS proxy
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
}
os.environ.update(SERVER_ENV)

import django  # noqa: E402

django.setup()

import logging  # noqa: E402
import warnings  # noqa: E402

from _bulk_data import fill, metric_counters_fill  # noqa: E402 - bench/, on the path as this script's folder
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Permission  # noqa: E402
from django.db import DatabaseError, connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

from scheduler.api_tokens import token_create  # noqa: E402
from scheduler.models import Job, JobRun, MetricCounter  # noqa: E402

AIM_MS = 100.0
SIZES = {"full": (100_000, 5_000_000), "ci": (2_000, 50_000)}
PREFIX = "apibench"
GUNICORN_WORKERS = 2  # one per core here; requests are sent one at a time
ALLOY_EVERY = 2
REMOVED_EVERY = 50
SYNC_EVERY_MINUTES = 5
# Each URL's request, and the header that authorises it: {} becomes the API token's or the metrics one.
URLS = {
    "jobs, first page": "/api/v1/jobs/",
    "jobs ?failing=true": "/api/v1/jobs/?failing=true",
    "jobs ?source=alloy": "/api/v1/jobs/?source=alloy",
    "metrics": "/metrics",
}


@dataclass
class Measured:
    name: str
    status: int
    times_ms: list[float]
    queries: list[int]  # per captured request, in order
    db_ms: float  # the database's time in the last captured request
    cpu_ms: float  # this process's CPU in it: the view's Python, whatever else runs on the machine
    size_bytes: int
    slowest: list[tuple[float, str]]  # (ms, sql) of the last captured request, slowest first

    @property
    def steady_queries(self) -> int:
        return self.queries[-1] if self.queries else -1


def authorization(url: str, api_key: str) -> str:
    return f"Bearer {METRICS_TOKEN}" if url.startswith("/metrics") else f"Token {api_key}"


def api_token_for_reader() -> str:
    """A token of a user who may read jobs, runs and syncs (the view permissions) and nothing else: a
    report portal's. Returns the key."""
    user = get_user_model().objects.create_user(username="portal", password=None)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["scheduler", "alloysync"], codename__startswith="view_")
    )
    return token_create(user=user, name="bench")[1]  # as `manage.py api_token` and the admin make one


def fill_alloy_side(runs_days: float) -> None:
    """Sync records every ``SYNC_EVERY_MINUTES`` over ``runs_days``, the newest a success a minute
    ago; one item state per Alloy job, 1 in 1,000 waiting to be written back."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO alloysync_syncrun (trigger, mode, started_at, finished_at, status, settings_digest, "
            "items_read, created, updated, unchanged, removed, invalid, requests, errors, message) "
            "SELECT 'schedule', CASE WHEN g %% 12 = 0 THEN 'full' ELSE 'incremental' END, "
            "s, s + interval '20 seconds', "
            "CASE WHEN g %% 50 = 0 THEN 'failed' ELSE 'succeeded' END, '', 10, 0, 1, 9, 0, 0, 2, '[]'::jsonb, '' "
            "FROM generate_series(1, %s) g, LATERAL (SELECT now() - g * %s * interval '1 minute' AS s) t",
            [max(1, round(runs_days * 24 * 60 / SYNC_EVERY_MINUTES)), SYNC_EVERY_MINUTES],
        )
        cursor.execute(
            "INSERT INTO alloysync_itemstate (item_id, refusal, written, signature, collection, dirty_since, "
            "next_attempt_at, attempts, last_error, written_at, run_now_pending, run_now_signature) "
            "SELECT external_id, '', '{}'::jsonb, '', 'Jobs', "
            "CASE WHEN id % 1000 = 0 THEN now() - interval '1 minute' ELSE NULL END, NULL, 0, '', now(), false, '' "
            "FROM scheduler_job WHERE source = 'alloy'"
        )
        cursor.execute("ANALYZE alloysync_syncrun")
        cursor.execute("ANALYZE alloysync_itemstate")


def settle() -> None:
    """VACUUM ANALYZE, as autovacuum would have by now on a live database: a table just filled has no
    visibility map yet, so counting jobs would read every row instead of the primary key's index."""
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"  vacuumed in {time.perf_counter() - started:.1f} s", flush=True)


def capture(client: Client, url: str, api_key: str, explain: bool, repeats: int = 3) -> Measured:
    """Queries of ``repeats`` in-process requests (the first may warm caches), their statuses checked."""
    queries: list[int] = []
    status, size, db_ms, cpu_ms, slowest = 0, 0, 0.0, 0.0, []
    for _ in range(repeats):
        cpu_started = time.process_time()
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url, HTTP_AUTHORIZATION=authorization(url, api_key))
        cpu_ms = (time.process_time() - cpu_started) * 1000
        status, size = response.status_code, len(response.content)
        queries.append(len(captured.captured_queries))
        timed = [(float(query["time"]) * 1000, str(query["sql"])) for query in captured.captured_queries]
        db_ms = sum(ms for ms, _ in timed)
        slowest = sorted(timed, reverse=True)
    if explain and status == 200:
        explain_queries([sql for _, sql in slowest])
    return Measured(url, status, [], queries, db_ms, cpu_ms, size, slowest)


def explain_queries(sqls: list[str]) -> None:
    for sql in sqls:
        if not sql.lstrip().upper().startswith("SELECT"):
            print(f"    (not explained: not a SELECT) {sql[:200]}")
            continue
        with connection.cursor() as cursor:
            try:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plan = "\n      ".join(row[0] for row in cursor.fetchall())
            except DatabaseError as exc:
                plan = f"(not explained: {type(exc).__name__})"
        print(f"    {sql[:600]}\n      {plan}")


def http_times(port: int, url: str, api_key: str, warmup: int, requests: int) -> tuple[int, list[float]]:
    """Milliseconds of ``requests`` GETs after ``warmup`` untimed ones, each on a new connection (as
    gunicorn's sync workers close each one); the last status."""
    headers = {"Authorization": authorization(url, api_key), "Host": "127.0.0.1"}
    times, status = [], 0
    for index in range(warmup + requests):
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request("GET", url, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        finally:
            conn.close()
        if index >= warmup:
            times.append((time.perf_counter() - started) * 1000)
    return status, times


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(database_name: str) -> Iterator[int]:
    """gunicorn serving the project on the database ``database_name``; yields its port."""
    port = free_port()
    parts = urlsplit(os.environ["DATABASE_URL"])
    database_url = urlunsplit(parts._replace(path=f"/{database_name}"))
    log_path = Path(tempfile.mkdtemp(prefix="alloysync-api-bench-")) / "gunicorn.log"
    env = {**os.environ, **SERVER_ENV, "DATABASE_URL": database_url}
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(GUNICORN_WORKERS)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {process.returncode}: see {log_path}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn not listening after 60 s: see {log_path}") from None
                time.sleep(0.2)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure_size(jobs: int, runs: int, args: argparse.Namespace) -> list[Measured]:
    """Fill (or reuse) the database for one size and measure every URL on it."""
    test_settings = settings.DATABASES["default"].setdefault("TEST", {})
    test_settings["NAME"] = f"{connection.settings_dict['NAME']}_{PREFIX}_{jobs}"
    # create_test_db returns the new name: the one to go back to is read first.
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=not args.keep, keepdb=args.keep, serialize=False)
    try:
        if args.keep and Job.objects.exists():
            print(f"\nReusing the kept database for {jobs} jobs (--keep)", flush=True)
            api_key = api_token_for_reader_again()
            if not MetricCounter.objects.exists():  # kept before the benchmark had counters
                metric_counters_fill()
        else:
            print(f"\nFilling {jobs} jobs and {runs} runs...", flush=True)
            fill(jobs, runs, alloy_every=ALLOY_EVERY, removed_every=REMOVED_EVERY)
            fill_alloy_side(runs_days=min(90.0, runs / jobs))
            metric_counters_fill()
            settle()
            api_key = api_token_for_reader()
        client = Client()
        measured = [capture(client, url, api_key, args.explain) for url in URLS.values()]
        with gunicorn(connection.settings_dict["NAME"]) as port:
            for result in measured:
                if result.status == 200:
                    result.status, result.times_ms = http_times(port, result.name, api_key, args.warmup, args.requests)
        counts = (Job.objects.count(), JobRun.objects.count())
        print("  in the database: {} jobs, {} runs".format(*counts))
        return measured
    finally:
        if args.keep:
            connection.close()
            settings.DATABASES["default"]["NAME"] = connection.settings_dict["NAME"] = old_name
        else:
            connection.creation.destroy_test_db(old_name, verbosity=0)


def api_token_for_reader_again() -> str:
    """A kept database's reader gets a new token (keys are not kept)."""
    get_user_model().objects.filter(username="portal").delete()
    return api_token_for_reader()


def report(jobs: int, runs: int, measured: list[Measured], requests: int) -> bool:
    print(f"\n{jobs:,} jobs, {runs:,} runs: {requests} requests each over HTTP (gunicorn), after warm-up")
    met = True
    for name, result in zip(URLS, measured, strict=True):
        if result.status != 200 or not result.times_ms:
            print(f"  {name:<20} answered {result.status}: not measured")
            met = False
            continue
        median = statistics.median(result.times_ms)
        p95 = statistics.quantiles(result.times_ms, n=20)[-1] if len(result.times_ms) >= 2 else result.times_ms[0]
        mark = "PASS" if p95 < AIM_MS else "MISS"
        varied = "" if len(set(result.queries)) == 1 else f" (first requests: {result.queries})"
        print(
            f"  {name:<20} median {median:6.1f} ms  p95 {p95:6.1f} ms  {result.steady_queries:2d} queries"
            f"{varied}  db {result.db_ms:5.1f} ms  python {result.cpu_ms:5.1f} ms  "
            f"{result.size_bytes / 1024:5.1f} KiB  p95 aim {AIM_MS:.0f} ms: {mark}"
        )
        if mark == "MISS" and result.db_ms < median / 2:
            print(f"      most of it outside the database ({result.db_ms:.0f} of {median:.0f} ms): profile the view")
        elif mark == "MISS":
            for ms, sql in result.slowest[:2]:
                print(f"      slowest query {ms:.1f} ms: {' '.join(sql.split())[:200]}")
        met = met and mark == "PASS"
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--size", choices=sorted(SIZES), default="full", help="full: 100,000 / 5,000,000; ci: 2,000 / 50,000"
    )
    parser.add_argument("--jobs", type=int, help="jobs (overrides --size)")
    parser.add_argument("--runs", type=int, help="runs (overrides --size)")
    parser.add_argument("--scale", type=int, default=10, help="measure first at 1/scale of the size (1: only once)")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per URL and size")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per URL first")
    parser.add_argument("--keep", action="store_true", help="keep the filled databases, and reuse ones kept before")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each request's queries")
    args = parser.parse_args()
    jobs = args.jobs or SIZES[args.size][0]
    runs = args.runs or SIZES[args.size][1]
    if connection.vendor != "postgresql":
        raise SystemExit("needs PostgreSQL: set DATABASE_URL=postgres://...")
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic here
    settings.DEBUG = False
    setup_test_environment()  # the test client's ALLOWED_HOSTS, as in tests
    sizes = [(jobs, runs)]
    if args.scale > 1:
        # At least 200 jobs, so that every filter's page holds some (1 job in 100 fails): an empty
        # page makes one query fewer, which is not rows making queries.
        small_jobs = max(min(jobs, 200), jobs // args.scale)
        sizes.insert(0, (small_jobs, max(1, runs * small_jobs // jobs)))
    results = [(size, measure_size(*size, args)) for size in sizes]
    print(
        f"\nGET latency over HTTP: median and p95 of {args.requests}; queries counted in-process; aim: p95 under 100 ms"
    )
    all_met = all([report(*size, measured, args.requests) for size, measured in results])
    problems = [
        f"{name} answered {m.status}" for _, ms in results for name, m in zip(URLS, ms, strict=True) if m.status != 200
    ]
    if len(results) == 2:
        print("\nqueries per request, smaller -> larger size:")
        for name, small, large in zip(URLS, results[0][1], results[1][1], strict=True):
            grows = large.steady_queries > small.steady_queries
            print(
                f"  {name:<20} {small.steady_queries} -> {large.steady_queries}{'  GROWS WITH ROWS' if grows else ''}"
            )
            if grows and small.status == 200:
                problems.append(f"{name}: queries grow with rows")
    print("\naim met at every size" if all_met else "\naim missed: see above")
    if problems:
        raise SystemExit("; ".join(problems))


if __name__ == "__main__":
    main()
