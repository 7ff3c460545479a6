// js-probe: a JavaScript guest for the sandbox tests (`tests/polyglot`).
//
// Subscribes to `js.probe`. `{"spin": true}` loops forever (fuel and deadline
// must stop it); `{"fetch": url}` posts to `url` through the host's `http`
// interface and stores the status (kv `status`) or the error (kv `error`);
// otherwise it counts in kv and emits `js.counted`.

import { get, set } from "hookhost:plugin/kv@0.2.1";
import { emit } from "hookhost:plugin/emit@0.2.1";
import { log } from "hookhost:plugin/log@0.2.1";
import { fetch } from "hookhost:plugin/http@0.2.1";

export function describe() {
  return {
    subscriptions: ["js.probe"],
    retry: { maxAttempts: 2, initialBackoffMs: 10n, maxBackoffMs: 10n },
    schedules: [],
  };
}

export function handle(event) {
  const body = event.body.length ? JSON.parse(new TextDecoder().decode(event.body)) : {};
  if (body.retry) throw { tag: "retry", val: body.retry };
  if (body.reject) throw { tag: "reject", val: body.reject };
  if (body.raise) throw new Error(body.raise);
  if (body.spin) { for (;;) {} }
  if (body.fetch) {
    try {
      const response = fetch({
        method: "POST",
        url: body.fetch,
        headers: [["content-type", "application/json"]],
        body: new TextEncoder().encode(JSON.stringify({ from: "js", event: event.id })),
        idempotencyKey: undefined,
        timeoutMs: undefined,
      });
      set("status", new TextEncoder().encode(String(response.status)));
    } catch (e) {
      const error = e && e.payload !== undefined ? e.payload : e;
      set("error", new TextEncoder().encode(JSON.stringify(error)));
    }
    return;
  }
  const before = get("count");
  const count = (before ? Number(new TextDecoder().decode(before)) : 0) + 1;
  set("count", new TextEncoder().encode(String(count)));
  emit("js.counted", new TextEncoder().encode(JSON.stringify({ count })), "counted-" + event.id);
  log("info", "counted", [["count", String(count)]]);
}
