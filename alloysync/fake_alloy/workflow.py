"""A simulated Alloy workflow: an event trigger on a design that makes an HTTP request to a URL.

Alloy has no webhook API; a customer builds a workflow that listens on create, edit (optionally of
chosen attributes) and delete of a design's items and runs an "Http Request" action. Like Alloy's,
the fake's calls are fire-and-forget: made from a background thread, one at a time, the answer
ignored, failures logged at debug and recorded, never retried.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlencode, urlsplit, urlunsplit

from alloysync.fake_alloy.samples import SAMPLE_DESIGN_CODE
from alloysync.fake_alloy.store import ItemEvent

logger = logging.getLogger("alloysync.fake_alloy")

# How a workflow can put the triggering item in its request (the customer writes the body in Alloy):
WORKFLOW_BODIES = {
    "itemId": '{"itemId": "<id>"}',
    "itemIds": '{"itemIds": ["<id>"]}',
    "item": '{"item": {"itemId": "<id>", "designCode": "<design>"}}',
    "query": "no body; ?itemId=<id> added to the URL",
}
WORKFLOW_EVENTS = frozenset({"create", "edit", "delete"})


@dataclass(frozen=True)
class Workflow:
    """A workflow on ``design_code`` that POSTs to ``url`` with ``Authorization: Bearer <secret>``.

    ``body`` is one of ``WORKFLOW_BODIES``; ``on`` the events it listens to; ``attributes``, when
    set, the attribute codes an edit must change to fire it (creates and deletes always fire);
    ``timeout`` is seconds per call. ValueError for a URL that is not http(s) or an unknown option.
    """

    url: str
    secret: str = field(repr=False)  # a key item in Alloy: never shown
    design_code: str = SAMPLE_DESIGN_CODE
    body: str = "itemId"
    on: Collection[str] = WORKFLOW_EVENTS  # kept as a frozenset
    attributes: Collection[str] | None = None  # kept as a frozenset
    timeout: float = 2.0

    def __post_init__(self) -> None:
        if urlsplit(self.url).scheme not in ("http", "https") or not urlsplit(self.url).netloc:
            raise ValueError("A workflow's URL must be an http:// or https:// URL.")
        if self.body not in WORKFLOW_BODIES:
            raise ValueError(f"body must be one of {sorted(WORKFLOW_BODIES)}, not {self.body!r}.")
        # Accept any iterable of names or codes; keep frozensets so the workflow stays hashable.
        on = frozenset(self.on)
        if not on or not on <= WORKFLOW_EVENTS:
            raise ValueError(f"on must be some of {sorted(WORKFLOW_EVENTS)}, not {sorted(on)}.")
        object.__setattr__(self, "on", on)
        if self.attributes is not None:
            object.__setattr__(self, "attributes", frozenset(self.attributes))
        if self.timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds.")

    def fires_on(self, event: ItemEvent, changed: frozenset[str]) -> bool:
        """Whether ``event`` triggers this workflow; ``changed`` are the attribute codes an edit changed."""
        action = event.action.lower()
        if event.design_code != self.design_code or action not in self.on:
            return False
        return action != "edit" or self.attributes is None or not changed.isdisjoint(self.attributes)

    def request(self, event: ItemEvent) -> urllib.request.Request:
        """The POST this workflow makes for ``event``, in its ``body`` shape."""
        url, data = self.url, b""
        if self.body == "query":
            parts = urlsplit(self.url)
            query = "&".join(part for part in (parts.query, urlencode({"itemId": event.item_id})) if part)
            url = urlunsplit(parts._replace(query=query))
        else:
            data = json.dumps(_body(self.body, event)).encode()
        headers = {"Authorization": f"Bearer {self.secret}", "Content-Type": "application/json"}
        return urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310 - http(s) only


def _body(shape: str, event: ItemEvent) -> dict[str, object]:
    if shape == "itemIds":
        return {"itemIds": [event.item_id]}
    if shape == "item":
        return {"item": {"itemId": event.item_id, "designCode": event.design_code}}
    return {"itemId": event.item_id}


class WorkflowCall(NamedTuple):
    """One call a workflow made: the event (create, edit, delete), the item, and the HTTP status
    answered or, when there was none, the error's text."""

    event: str
    item_id: str
    outcome: int | str

    @property
    def failed(self) -> bool:
        """Whether the call got no answer or an error status (Alloy would not act on either)."""
        return isinstance(self.outcome, str) or self.outcome >= 400


class WorkflowRunner:
    """Makes workflow calls in order from one daemon thread, so an edit never waits for a webhook.

    Thread-safe. The thread starts with the first call and ends at ``stop()``; calls queued after
    that start it again.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Workflow, ItemEvent] | None] = queue.Queue()
        self._lock = threading.Condition()
        self._calls: list[WorkflowCall] = []
        self._pending = 0
        self._thread: threading.Thread | None = None
        # No proxy: a proxy from the environment would swallow calls to a loopback receiver.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def calls(self) -> list[WorkflowCall]:
        """Every call made so far, in order."""
        with self._lock:
            return list(self._calls)

    def submit(self, workflow: Workflow, event: ItemEvent) -> None:
        """Queue a call for ``event``; returns at once."""
        with self._lock:
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="fake-alloy-workflow", daemon=True)
                self._thread.start()
        self._queue.put((workflow, event))

    def wait(self, timeout: float = 5.0) -> bool:
        """Wait up to ``timeout`` seconds until every queued call has been made; whether they were."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending == 0, timeout)

    def stop(self) -> None:
        """End the thread once the calls queued so far have been made (a no-op when none runs)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            workflow, event = job
            call = WorkflowCall(event.action.lower(), event.item_id, self._call(workflow, event))
            with self._lock:
                self._calls.append(call)
                self._pending -= 1
                self._lock.notify_all()

    def _call(self, workflow: Workflow, event: ItemEvent) -> int | str:
        try:
            with self._opener.open(workflow.request(event), timeout=workflow.timeout) as response:
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as exc:
            exc.close()
            _log_failure(workflow, f"HTTP {exc.code}")
            return int(exc.code)
        except (OSError, ValueError) as exc:  # URLError, refused, timed out, a bad answer
            _log_failure(workflow, repr(exc))
            return f"{type(exc).__name__}: {exc}"


def _log_failure(workflow: Workflow, what: str) -> None:
    # The host and path only: a customer may put secrets in the URL's query.
    where = urlsplit(workflow.url)
    logger.debug("fake Alloy workflow call to %s%s failed: %s", where.netloc, where.path, what)
