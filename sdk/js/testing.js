// Run a handler offline under Node's own test runner, with no host:
//
//     node --import ./hookhost/register.js --test
//
//     import { test } from "node:test";
//     import assert from "node:assert/strict";
//     import { run, event } from "./hookhost/testing.js";
//     import { Response } from "./hookhost/index.js";
//     import * as lead from "./handler.js";
//
//     test("a lead is routed", () => {
//       const result = run(lead, event("form.submitted", { json: { email: "ada@example.com" } }));
//       assert.equal(result.outcome, "ok", result.message);
//     });
//
// `run` behaves as the host does for one attempt: kv reads see the attempt's
// own writes; writes and emitted events are reported (the host commits them
// only when the outcome is "ok"); outbound calls are answered from `http`
// and never reach the network (an undeclared call fails as `denied`); each
// call gets the host's default Idempotency-Key. `hookhost test` runs the
// built component in the real sandbox.

import { Event, HttpError, Response } from "./index.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (v) => (typeof v === "string" ? encoder.encode(v) : v);

/** A fixture event; `json` sets the body and its content type. */
export function event(topic, { json, body = "", id = "01J00000000000000000000000", idempotencyKey, attempt = 1, headers = [], provenance = { kind: "api" } } = {}) {
  let contentType;
  if (json !== undefined) {
    body = JSON.stringify(json);
    contentType = "application/json";
  }
  return new Event({ id, topic, idempotencyKey, attempt, headers, contentType, body: bytes(body), provenance });
}

class LocalHost {
  constructor(event, plugin, kv, config, http) {
    this.event = event;
    this.plugin = plugin;
    this.store = new Map(Object.entries(kv).map(([k, v]) => [k, bytes(v)]));
    this.config = config;
    this.answers = http;
    this.result = {
      outcome: "ok",
      message: undefined,
      kv: new Map(),
      emitted: [],
      logs: [],
      calls: [],
      outbox: [],
      /** The JSON value this attempt wrote at `key`. */
      kvJson(key) {
        const v = this.kv.get(key);
        return v === null || v === undefined ? v : JSON.parse(decoder.decode(v));
      },
    };
  }
  kvGet(key) {
    if (this.result.kv.has(key)) return this.result.kv.get(key) ?? undefined;
    return this.store.get(key);
  }
  kvSet(key, value) {
    this.result.kv.set(key, value);
  }
  kvDelete(key) {
    this.result.kv.set(key, null);
  }
  log(level, message, fields) {
    this.result.logs.push({ level, message, fields: Object.fromEntries(fields) });
  }
  emit(topic, body, idempotencyKey) {
    this.result.emitted.push({ topic, body, idempotencyKey, json: () => JSON.parse(decoder.decode(body)) });
  }
  configGet(key) {
    return this.config[key];
  }
  fetch({ method, url, headers, body, idempotencyKey }) {
    const key = idempotencyKey ?? `${this.event.id}:${this.plugin}:${this.result.calls.length}`;
    const call = {
      method,
      url,
      headers,
      body,
      idempotencyKey: key === "" ? undefined : key,
      json: () => (body === undefined ? undefined : JSON.parse(decoder.decode(body))),
    };
    this.result.calls.push(call);
    let answer = this.answers[`${method} ${url}`] ?? this.answers[url];
    if (answer === undefined) answer = new HttpError("denied", `no answer declared for ${method} ${url}`);
    if (typeof answer === "function") answer = answer(call);
    if (answer instanceof HttpError) {
      call.error = answer.message;
      throw { payload: { tag: answer.kind, val: answer.detail } };
    }
    call.status = answer.status;
    return { status: answer.status, headers: answer.headers, body: answer.body };
  }
  sendAfterCommit({ method, url, headers, body, idempotencyKey }) {
    const n = this.result.outbox.length;
    const key = idempotencyKey ?? `${this.event.id}:${this.plugin}:outbox:${n}`;
    this.result.outbox.push({
      method,
      url,
      headers,
      body,
      idempotencyKey: key === "" ? undefined : key,
      json: () => (body === undefined ? undefined : JSON.parse(decoder.decode(body))),
    });
  }
}

/** What a handler module (its `describe`) subscribes to. */
export function manifest(module) {
  return module.describe();
}

/**
 * Runs one attempt of the handler `module` exports (its `handle`) on `event`.
 * `http` maps "METHOD url" (or just the url) to a `Response`, an
 * `HttpError`, or a function of the call that returns one.
 */
export function run(module, event, { kv = {}, config = {}, http = {}, plugin = "handler" } = {}) {
  const host = new LocalHost(event, plugin, kv, config, http);
  const previous = globalThis.__hookhostLocal;
  globalThis.__hookhostLocal = host;
  try {
    module.handle(event);
  } catch (e) {
    if (e && (e.tag === "retry" || e.tag === "reject")) {
      host.result.outcome = e.tag;
      host.result.message = e.val;
    } else {
      host.result.outcome = "trap";
      host.result.message = e?.stack ?? String(e);
    }
  } finally {
    globalThis.__hookhostLocal = previous;
  }
  return host.result;
}

export { Response, HttpError };
