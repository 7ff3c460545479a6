"""Hookhost handlers in Python.

A handler is a class named ``WitWorld`` (the name componentize-py looks for)
that subclasses :class:`Handler`, declares what it subscribes to, and
implements ``handle``::

    from hookhost import Handler, Event, Reject, Retry, kv, log, http

    class WitWorld(Handler):
        subscriptions = ["shop.order.paid"]

        def handle(self, event: Event) -> None:
            order = event.json()
            if "customer" not in order:
                raise Reject("an order needs a customer")   # dead letter, no retry
            total = kv.increment(f"orders:{order['customer']}")
            log.info("order counted", customer=order["customer"], total=total)

Inside the sandbox every call goes to the host through the generated
bindings of the ``hookhost:plugin@0.2.1`` world. Outside it (``pytest``,
``python -m hookhost.testing``), the same calls go to an in-memory host:
see :mod:`hookhost.testing`.
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from . import _host

__all__ = [
    "Event",
    "Handler",
    "HttpError",
    "Provenance",
    "Reject",
    "Response",
    "Retry",
    "RetryPolicy",
    "Schedule",
    "config",
    "emit",
    "emit_json",
    "http",
    "kv",
    "log",
]


class Retry(Exception):
    """Raise to fail this attempt and ask for another, by the retry policy."""


class Reject(Exception):
    """Raise to fail for good: the delivery goes to the dead letters."""


@dataclass(frozen=True)
class RetryPolicy:
    """How the host retries a failed attempt (exponential backoff with jitter)."""

    max_attempts: int = 5
    initial_backoff_ms: int = 1_000
    max_backoff_ms: int = 60_000


@dataclass(frozen=True)
class Schedule:
    """A clock-driven event: at each tick of ``cron`` (six fields, seconds
    first, UTC) the host stores an event with topic ``schedule.<name>``."""

    name: str
    cron: str


@dataclass(frozen=True)
class Provenance:
    """Where an event came from.

    ``kind`` is ``"api"`` (``POST /events/{topic}``), ``"source"`` (a
    configured source's route: ``source`` names it, ``verified`` says whether
    its signature was checked), ``"emitted"`` (``plugin`` emitted it) or
    ``"schedule"`` (``plugin``'s schedule ``schedule`` ticked).
    """

    kind: str
    source: Optional[str] = None
    verified: bool = False
    plugin: Optional[str] = None
    schedule: Optional[str] = None


@dataclass
class Event:
    """One delivery of a stored event to this handler."""

    id: str
    topic: str
    body: bytes = b""
    idempotency_key: Optional[str] = None
    received_at_ms: int = 0
    attempt: int = 1
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: Optional[str] = None
    provenance: Optional[Provenance] = None

    def json(self) -> Any:
        """The body parsed as JSON; a body that is not JSON rejects the event
        (no retry will fix it)."""
        try:
            return _json.loads(self.body)
        except ValueError as e:
            raise Reject(f"body is not JSON: {e}") from None

    def text(self) -> str:
        """The body as UTF-8 text (invalid bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def header(self, name: str) -> Optional[str]:
        """The first header called ``name`` (any case)."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def verified_by(self, source: str) -> bool:
        """Whether the event came through source ``source``'s route with its
        signature verified."""
        p = self.provenance
        return p is not None and p.kind == "source" and p.source == source and p.verified


class Handler:
    """Base class of a handler; name the subclass ``WitWorld``.

    Class attributes declare the manifest: ``subscriptions`` (topics, ``*``
    wildcards allowed), ``retry`` (a :class:`RetryPolicy`, or ``None`` for the
    operator's default) and ``schedules``. ``handle(self, event)`` returns
    ``None`` on success, raises :class:`Retry` or :class:`Reject` to fail; any
    other exception traps the attempt (its traceback is in the attempt's
    stderr) and is retried.
    """

    subscriptions: Sequence[str] = ()
    retry: Optional[RetryPolicy] = None
    schedules: Sequence[Schedule] = ()

    def handle(self, event: Event) -> None:  # pragma: no cover - overridden
        raise NotImplementedError("a handler implements handle(self, event)")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        user = cls.__dict__.get("handle")
        if user is None or getattr(user, "_hookhost_entry", False):
            return
        setattr(cls, "_hookhost_handle", user)  # what hookhost.testing calls

        def handle(self: Handler, event: Any) -> None:
            _host.handle(self, user, event)

        handle._hookhost_entry = True  # type: ignore[attr-defined]
        handle.__doc__ = user.__doc__
        cls.handle = handle  # type: ignore[method-assign]

    def describe(self) -> Any:
        return _host.describe(self)


class HttpError(Exception):
    """An outbound call that produced no response.

    ``kind`` is ``denied`` (not in the plugin's ``allowed_hosts``, or a
    refused address), ``timeout``, ``too_large``, ``invalid`` (a malformed
    request, or a header the host sets itself) or ``failed``. Uncaught, an
    ``invalid`` request rejects the event; the others retry it.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"http {kind.replace('_', ' ')}: {message}")
        self.kind = kind
        self.message = message


@dataclass
class Response:
    """A whole HTTP response."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return _json.loads(self.body)


class _Http:
    """Outbound HTTP through the host: only to the plugin's ``allowed_hosts``,
    within its budgets, each call recorded with the attempt.

    Every call carries an ``Idempotency-Key`` header: by default
    ``<event id>:<plugin>:<n>`` (``n`` counts the attempt's calls), the same
    on every retry of the event, so an API that honours the header sees one
    request. Pass ``idempotency_key=`` to choose one, or ``""`` for none.

    :meth:`send_after_commit` queues a request that needs no answer in the
    outbox: the host sends it once this attempt commits (never if it fails),
    retried with backoff under the same key (by default
    ``<event id>:<plugin>:outbox:<n>``) while the answer is a 408, 425, 429
    or 5xx, and a dead letter after the last try or at any other status
    (redirects are not followed).
    """

    @staticmethod
    def _request(
        headers: Optional[dict[str, str] | Sequence[tuple[str, str]]],
        body: Optional[bytes | str],
        json: Any,
    ) -> tuple[list[tuple[str, str]], Optional[bytes]]:
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        pairs = [(k.lower(), v) for k, v in pairs]
        if json is not None:
            body = _json.dumps(json)
            if not any(k == "content-type" for k, _ in pairs):
                pairs.append(("content-type", "application/json"))
        if isinstance(body, str):
            body = body.encode()
        return pairs, body

    def fetch(
        self,
        method: str,
        url: str,
        *,
        headers: Optional[dict[str, str] | Sequence[tuple[str, str]]] = None,
        body: Optional[bytes | str] = None,
        json: Any = None,
        idempotency_key: Optional[str] = None,
        timeout_ms: Optional[int] = None,
    ) -> Response:
        pairs, raw = self._request(headers, body, json)
        answer: Response = _host.fetch(method.upper(), url, pairs, raw, idempotency_key, timeout_ms)
        return answer

    def send_after_commit(
        self,
        method: str,
        url: str,
        *,
        headers: Optional[dict[str, str] | Sequence[tuple[str, str]]] = None,
        body: Optional[bytes | str] = None,
        json: Any = None,
        idempotency_key: Optional[str] = None,
        timeout_ms: Optional[int] = None,
    ) -> None:
        """Queues the request in the outbox; raises :class:`HttpError` if it
        cannot be queued (a bad URL, a host not allowed, too many)."""
        pairs, raw = self._request(headers, body, json)
        _host.send_after_commit(method.upper(), url, pairs, raw, idempotency_key, timeout_ms)

    def post_json_after_commit(self, url: str, value: Any, **kwargs: Any) -> None:
        """Queues a POST of ``value`` as JSON in the outbox."""
        self.send_after_commit("POST", url, json=value, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Response:
        return self.fetch("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Response:
        return self.fetch("POST", url, **kwargs)

    def post_json(self, url: str, value: Any, **kwargs: Any) -> Response:
        """POSTs ``value`` as JSON."""
        return self.fetch("POST", url, json=value, **kwargs)

    def get_json(self, url: str, **kwargs: Any) -> Any:
        """GETs ``url`` and parses its JSON body; a non-2xx status raises
        :class:`Retry`."""
        response = self.get(url, **kwargs)
        if not response.ok:
            raise Retry(f"GET {url}: status {response.status}")
        return response.json()


class _Kv:
    """This plugin's key-value store. Writes are buffered and committed with
    the attempt's success (a failed attempt leaves none); reads see the
    attempt's own writes, and a key another attempt changed in between makes
    this one re-run."""

    def get(self, key: str) -> Optional[bytes]:
        return _host.kv_get(key)

    def set(self, key: str, value: bytes | str) -> None:
        _host.kv_set(key, value.encode() if isinstance(value, str) else bytes(value))

    def delete(self, key: str) -> None:
        _host.kv_delete(key)

    def get_json(self, key: str, default: Any = None) -> Any:
        """The value at ``key`` parsed as JSON, or ``default``."""
        stored = self.get(key)
        return default if stored is None else _json.loads(stored)

    def set_json(self, key: str, value: Any) -> None:
        self.set(key, _json.dumps(value))

    def increment(self, key: str, by: int = 1) -> int:
        """Adds ``by`` to the integer at ``key`` (0 if absent); returns the
        new value."""
        value = int(self.get_json(key, 0)) + by
        self.set_json(key, value)
        return value


class _Log:
    """Structured logs, kept with the attempt: ``log.info("msg", k=v)``."""

    def _write(self, level: str, message: str, fields: dict[str, Any]) -> None:
        _host.log(level, message, [(k, v if isinstance(v, str) else _json.dumps(v, default=str)) for k, v in fields.items()])

    def trace(self, message: str, **fields: Any) -> None:
        self._write("trace", message, fields)

    def debug(self, message: str, **fields: Any) -> None:
        self._write("debug", message, fields)

    def info(self, message: str, **fields: Any) -> None:
        self._write("info", message, fields)

    def warn(self, message: str, **fields: Any) -> None:
        self._write("warn", message, fields)

    def error(self, message: str, **fields: Any) -> None:
        self._write("error", message, fields)


class _Config:
    """Operator configuration: ``[plugins.<name>.config]`` values and
    ``secrets`` (read from the host's environment; redacted in records)."""

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        value = _host.config_get(key)
        return default if value is None else value

    def require(self, key: str) -> str:
        """The value of ``key``; unset, the attempt is retried (the operator
        can set it and the event is not lost)."""
        value = _host.config_get(key)
        if value is None:
            raise Retry(f"config {key!r} is not set for this plugin")
        return value


def emit(topic: str, body: bytes | str, idempotency_key: Optional[str] = None) -> None:
    """Emits an event, stored only if this attempt succeeds. A key makes it
    emitted once however often the attempt runs."""
    _host.emit(topic, body.encode() if isinstance(body, str) else bytes(body), idempotency_key)


def emit_json(topic: str, value: Any, idempotency_key: Optional[str] = None) -> None:
    """Emits ``value`` as a JSON event (see :func:`emit`)."""
    emit(topic, _json.dumps(value), idempotency_key)


http = _Http()
kv = _Kv()
log = _Log()
config = _Config()

_host.bind(
    Event=Event,
    Provenance=Provenance,
    Response=Response,
    HttpError=HttpError,
    Retry=Retry,
    Reject=Reject,
)
