"""py-probe: a Python guest for the sandbox tests (`tests/polyglot`).

Subscribes to `py.probe`. `{"spin": true}` loops forever (fuel and deadline
must stop it); `{"fetch": url}` posts to `url` through the host's `http`
interface and stores the status (kv `status`) or the error (kv `error`);
otherwise it counts in kv and emits `py.counted`.
"""
import json
import wit_world
from wit_world.imports import types, kv, emit, log, config, http
from componentize_py_types import Err

class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.Manifest:
        return types.Manifest(subscriptions=["py.probe"], retry=types.RetryPolicy(max_attempts=2, initial_backoff_ms=10, max_backoff_ms=10), schedules=[])

    def handle(self, event: types.Event) -> None:
        body = json.loads(event.body or b"{}")
        if "retry" in body:
            raise Err(types.HandlerError_Retry(body["retry"]))
        if "reject" in body:
            raise Err(types.HandlerError_Reject(body["reject"]))
        if "raise" in body:
            raise RuntimeError(body["raise"])
        if body.get("spin"):
            while True:
                pass
        if body.get("fetch"):
            request = http.Request(
                method="POST",
                url=body["fetch"],
                headers=[("content-type", "application/json")],
                body=json.dumps({"from": "py", "event": event.id}).encode(),
                idempotency_key=None,
                timeout_ms=None,
            )
            try:
                response = http.fetch(request)
                kv.set("status", str(response.status).encode())
            except Err as e:
                kv.set("error", f"{type(e.value).__name__}: {e.value.value}".encode())
            return
        count = int((kv.get("count") or b"0").decode()) + 1
        kv.set("count", str(count).encode())
        emit.emit("py.counted", json.dumps({"count": count}).encode(), "counted-" + event.id)
        log.log(types.Level.INFO, "counted", [("count", str(count))])
