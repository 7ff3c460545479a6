"""Run a handler offline, in plain Python, with no host: for ``pytest``.

::

    from hookhost.testing import event, run
    from hookhost import Response
    from app import WitWorld

    def test_a_paid_order_is_tallied():
        result = run(WitWorld, event("shop.order.paid", json={"order_id": "o-1", "customer": "c-1"}),
                     kv={"customer:c-1": b'{"orders": 1, "lifetime_cents": 100}'},
                     http={"POST https://hooks.slack.com/x": Response(200)})
        assert result.outcome == "ok"
        assert result.kv_json("customer:c-1")["orders"] == 2

``run`` behaves as the host does for one attempt: kv reads see the attempt's
own writes; writes and emitted events are reported (the host commits them
only when the outcome is ``ok``); outbound calls are answered from ``http``
and never reach the network (an undeclared call fails as ``denied``); each
call gets the host's default ``Idempotency-Key``. This checks the handler's
logic; ``hookhost test`` runs the built component in the real sandbox.
"""

from __future__ import annotations

import json as _json
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Union

from . import Event, HttpError, Provenance, Reject, Response, Retry, _host

Answer = Union[Response, HttpError, Callable[["Call"], Response]]


@dataclass
class Call:
    """One outbound call the handler made."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: Optional[bytes]
    idempotency_key: Optional[str]
    status: Optional[int] = None
    error: Optional[str] = None

    def json(self) -> Any:
        return None if self.body is None else _json.loads(self.body)


@dataclass
class Emitted:
    topic: str
    body: bytes
    idempotency_key: Optional[str]

    def json(self) -> Any:
        return _json.loads(self.body)


@dataclass
class Log:
    level: str
    message: str
    fields: dict[str, str]


@dataclass
class Result:
    """What one attempt did. ``outcome`` is ``ok``, ``retry``, ``reject`` or
    ``trap`` (an uncaught exception: ``message`` holds its traceback)."""

    outcome: str
    message: Optional[str] = None
    kv: dict[str, Optional[bytes]] = field(default_factory=dict)
    emitted: list[Emitted] = field(default_factory=list)
    logs: list[Log] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    #: Requests queued with ``http.send_after_commit``: sent only if the
    #: outcome is ``ok``.
    outbox: list[Call] = field(default_factory=list)

    def kv_json(self, key: str) -> Any:
        """The JSON value this attempt wrote at ``key``."""
        value = self.kv[key]
        return None if value is None else _json.loads(value)


class LocalHost:
    """The in-memory host one :func:`run` talks to."""

    def __init__(
        self,
        event: Event,
        plugin: str,
        kv: Mapping[str, bytes | str],
        config: Mapping[str, str],
        http: Mapping[str, Answer],
    ) -> None:
        self.event = event
        self.plugin = plugin
        self.store = {k: v.encode() if isinstance(v, str) else bytes(v) for k, v in kv.items()}
        self.config = dict(config)
        self.answers = dict(http)
        self.result = Result(outcome="ok")

    def kv_get(self, key: str) -> Optional[bytes]:
        if key in self.result.kv:
            return self.result.kv[key]
        return self.store.get(key)

    def kv_set(self, key: str, value: bytes) -> None:
        self.result.kv[key] = value

    def kv_delete(self, key: str) -> None:
        self.result.kv[key] = None

    def log(self, level: str, message: str, fields: list[tuple[str, str]]) -> None:
        self.result.logs.append(Log(level, message, dict(fields)))

    def emit(self, topic: str, body: bytes, key: Optional[str]) -> None:
        self.result.emitted.append(Emitted(topic, body, key))

    def config_get(self, key: str) -> Optional[str]:
        return self.config.get(key)

    def fetch(self, method, url, headers, body, key, timeout_ms) -> Response:
        n = len(self.result.calls)
        if key is None:
            key = f"{self.event.id}:{self.plugin}:{n}"
        call = Call(method, url, headers, body, key or None)
        self.result.calls.append(call)
        answer = self.answers.get(f"{method} {url}", self.answers.get(url))
        if answer is None:
            answer = HttpError("denied", f"no answer declared for {method} {url}")
        if callable(answer) and not isinstance(answer, (Response, HttpError)):
            answer = answer(call)
        if isinstance(answer, HttpError):
            call.error = str(answer)
            raise answer
        call.status = answer.status
        return answer

    def send_after_commit(self, method, url, headers, body, key, timeout_ms) -> None:
        n = len(self.result.outbox)
        if key is None:
            key = f"{self.event.id}:{self.plugin}:outbox:{n}"
        self.result.outbox.append(Call(method, url, headers, body, key or None))


def event(
    topic: str,
    body: bytes | str = b"",
    *,
    json: Any = None,
    id: str = "01J00000000000000000000000",
    idempotency_key: Optional[str] = None,
    attempt: int = 1,
    headers: Optional[list[tuple[str, str]]] = None,
    provenance: Optional[Provenance] = None,
) -> Event:
    """A fixture event; ``json=`` sets the body and its content type."""
    content_type = None
    if json is not None:
        body, content_type = _json.dumps(json), "application/json"
    return Event(
        id=id,
        topic=topic,
        body=body.encode() if isinstance(body, str) else bytes(body),
        idempotency_key=idempotency_key,
        attempt=attempt,
        headers=list(headers or []),
        content_type=content_type,
        provenance=provenance or Provenance("api"),
    )


def manifest(handler: type) -> dict[str, Any]:
    """What the handler tells the host it subscribes to."""
    return _host.manifest(handler())


def run(
    handler: type,
    event: Event,
    *,
    kv: Optional[Mapping[str, bytes | str]] = None,
    config: Optional[Mapping[str, str]] = None,
    http: Optional[Mapping[str, Answer]] = None,
    plugin: str = "handler",
) -> Result:
    """Runs one attempt of ``handler`` (the ``WitWorld`` class) on ``event``.

    ``http`` maps ``"METHOD url"`` (or just the url) to a :class:`Response`,
    an :class:`HttpError` or a function of the :class:`Call` that returns one.
    """
    host = LocalHost(event, plugin, kv or {}, config or {}, http or {})
    previous, _host.local = _host.local, host
    try:
        handler._hookhost_handle(handler(), event)
    except Reject as e:
        host.result.outcome, host.result.message = "reject", str(e)
    except Retry as e:
        host.result.outcome, host.result.message = "retry", str(e)
    except HttpError as e:
        host.result.outcome = "reject" if e.kind == "invalid" else "retry"
        host.result.message = str(e)
    except Exception:  # noqa: BLE001 - an uncaught exception traps the attempt
        host.result.outcome, host.result.message = "trap", traceback.format_exc()
    finally:
        _host.local = previous
    return host.result
