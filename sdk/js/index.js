// Hookhost handlers in JavaScript.
//
//     import { handler, Reject, kv, log, http } from "./hookhost/index.js";
//
//     export const { describe, handle } = handler({
//       subscriptions: ["form.submitted"],
//       handle(event) {
//         const lead = event.json();
//         if (!lead.email) throw new Reject("a lead needs an email"); // dead letter
//         log.info("lead", { email: lead.email });
//       },
//     });
//
// Inside the sandbox the calls go to the host through the
// `hookhost:plugin@0.2.1` imports. Under Node (`node --import
// ./hookhost/register.js --test`) those imports resolve to an in-memory host:
// see testing.js.

import { get as kvGet, set as kvSet, delete as kvDelete } from "hookhost:plugin/kv@0.2.1";
import { log as hostLog } from "hookhost:plugin/log@0.2.1";
import { emit as hostEmit } from "hookhost:plugin/emit@0.2.1";
import { get as configGet } from "hookhost:plugin/config@0.2.1";
import { fetch as hostFetch } from "hookhost:plugin/http@0.2.1";
import { sendAfterCommit as hostSendAfterCommit } from "hookhost:plugin/outbox@0.2.1";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (value) => (typeof value === "string" ? encoder.encode(value) : value);

/** Fail this attempt and ask for another, by the retry policy. */
export class Retry extends Error {
  constructor(message) {
    super(message);
    this.name = "Retry";
  }
}

/** Fail for good: the delivery goes to the dead letters. */
export class Reject extends Error {
  constructor(message) {
    super(message);
    this.name = "Reject";
  }
}

/**
 * An outbound call that produced no response. `kind` is `denied`, `timeout`,
 * `too-large`, `invalid` or `failed`; uncaught, `invalid` rejects the event
 * and the others retry it.
 */
export class HttpError extends Error {
  constructor(kind, message) {
    super(`http ${kind.replace("-", " ")}: ${message}`);
    this.name = "HttpError";
    this.kind = kind;
    this.detail = message;
  }
}

/** One delivery of a stored event to this handler. */
export class Event {
  constructor(raw) {
    this.id = raw.id;
    this.topic = raw.topic;
    this.idempotencyKey = raw.idempotencyKey;
    this.receivedAtMs = Number(raw.receivedAtMs ?? 0);
    this.attempt = raw.attempt ?? 1;
    this.headers = raw.headers ?? [];
    this.contentType = raw.contentType;
    this.body = bytes(raw.body ?? new Uint8Array());
    this.provenance = provenance(raw.provenance);
  }

  /** The body parsed as JSON; a body that is not JSON rejects the event. */
  json() {
    try {
      return JSON.parse(this.text());
    } catch (e) {
      throw new Reject(`body is not JSON: ${e.message}`);
    }
  }

  /** The body as UTF-8 text. */
  text() {
    return decoder.decode(this.body);
  }

  /** The first header called `name` (any case). */
  header(name) {
    const lower = name.toLowerCase();
    return this.headers.find(([k]) => k.toLowerCase() === lower)?.[1];
  }

  /** Whether the event came through source `name`'s route, its signature verified. */
  verifiedBy(name) {
    const p = this.provenance;
    return p?.kind === "source" && p.source === name && p.verified;
  }
}

function provenance(p) {
  if (p === undefined || p === null) return undefined;
  if (p.kind) return p; // already in the SDK's shape (a test fixture)
  switch (p.tag) {
    case "api":
      return { kind: "api" };
    case "source":
      return { kind: "source", source: p.val.name, verified: p.val.verified };
    case "emitted":
      return { kind: "emitted", plugin: p.val };
    case "schedule":
      return { kind: "schedule", plugin: p.val.plugin, schedule: p.val.name };
    default:
      return undefined;
  }
}

/**
 * Declares a handler; export its `describe` and `handle`:
 * `export const { describe, handle } = handler({ subscriptions, retry, schedules, handle })`.
 * `retry` is `{ maxAttempts, initialBackoffMs, maxBackoffMs }` (numbers);
 * `schedules` is `[{ name, cron }]`. `handle(event)` returns to succeed,
 * throws `Retry` or `Reject` to fail; anything else thrown traps the attempt.
 */
export function handler(spec) {
  if (typeof spec?.handle !== "function") {
    throw new TypeError("handler({ ... }) needs a handle(event) function");
  }
  const manifest = {
    subscriptions: [...(spec.subscriptions ?? [])],
    retry: spec.retry
      ? {
          maxAttempts: spec.retry.maxAttempts ?? 5,
          initialBackoffMs: BigInt(spec.retry.initialBackoffMs ?? 1000),
          maxBackoffMs: BigInt(spec.retry.maxBackoffMs ?? 60000),
        }
      : undefined,
    schedules: (spec.schedules ?? []).map(({ name, cron }) => ({ name, cron })),
  };
  return {
    describe: () => manifest,
    handle(raw) {
      try {
        spec.handle(raw instanceof Event ? raw : new Event(raw));
      } catch (e) {
        if (e instanceof Reject) throw { tag: "reject", val: e.message };
        if (e instanceof Retry) throw { tag: "retry", val: e.message };
        if (e instanceof HttpError) throw { tag: e.kind === "invalid" ? "reject" : "retry", val: e.message };
        throw e;
      }
    },
    manifest,
    run: spec.handle,
  };
}

/**
 * This plugin's key-value store. Writes are buffered and committed with the
 * attempt's success; reads see the attempt's own writes.
 */
export const kv = {
  get: (key) => kvGet(key),
  getText: (key) => {
    const v = kvGet(key);
    return v === undefined ? undefined : decoder.decode(v);
  },
  set: (key, value) => kvSet(key, bytes(value)),
  delete: (key) => kvDelete(key),
  /** The value at `key` parsed as JSON, or `fallback`. */
  getJson(key, fallback = undefined) {
    const v = kvGet(key);
    return v === undefined ? fallback : JSON.parse(decoder.decode(v));
  },
  setJson: (key, value) => kvSet(key, encoder.encode(JSON.stringify(value))),
  /** Adds `by` to the integer at `key` (0 if absent); returns the new value. */
  increment(key, by = 1) {
    const value = Number(kv.getJson(key, 0)) + by;
    kv.setJson(key, value);
    return value;
  },
};

const write = (level) => (message, fields = {}) =>
  hostLog(
    level,
    message,
    Object.entries(fields).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );

/** Structured logs kept with the attempt: `log.info("msg", { key: value })`. */
export const log = {
  trace: write("trace"),
  debug: write("debug"),
  info: write("info"),
  warn: write("warn"),
  error: write("error"),
};

/** Emits an event, stored only if this attempt succeeds; a key makes it emitted once. */
export function emit(topic, body, idempotencyKey = undefined) {
  hostEmit(topic, bytes(body), idempotencyKey);
}

/** Emits `value` as a JSON event. */
export function emitJson(topic, value, idempotencyKey = undefined) {
  emit(topic, JSON.stringify(value), idempotencyKey);
}

/** Operator configuration: `[plugins.<name>.config]` values and `secrets`. */
export const config = {
  get: (key, fallback = undefined) => configGet(key) ?? fallback,
  /** The value of `key`; unset, the attempt is retried. */
  require(key) {
    const value = configGet(key);
    if (value === undefined) throw new Retry(`config "${key}" is not set for this plugin`);
    return value;
  },
};

/** A whole HTTP response. */
export class Response {
  constructor(status, { headers = [], body = new Uint8Array() } = {}) {
    this.status = status;
    this.headers = headers;
    this.body = bytes(body);
  }
  get ok() {
    return this.status >= 200 && this.status < 300;
  }
  header(name) {
    const lower = name.toLowerCase();
    return this.headers.find(([k]) => k.toLowerCase() === lower)?.[1];
  }
  text() {
    return decoder.decode(this.body);
  }
  json() {
    return JSON.parse(this.text());
  }
}

/** Calls the host's `call` with a request record; its error as `HttpError`. */
function hostCall(call, method, url, { headers = {}, body, json, idempotencyKey, timeoutMs } = {}) {
  const pairs = (Array.isArray(headers) ? headers : Object.entries(headers)).map(([k, v]) => [
    k.toLowerCase(),
    String(v),
  ]);
  if (json !== undefined) {
    body = JSON.stringify(json);
    if (!pairs.some(([k]) => k === "content-type")) pairs.push(["content-type", "application/json"]);
  }
  try {
    return call({
      method: method.toUpperCase(),
      url,
      headers: pairs,
      body: body === undefined ? undefined : bytes(body),
      idempotencyKey,
      timeoutMs,
    });
  } catch (e) {
    const error = e?.payload ?? e;
    if (error?.tag) throw new HttpError(error.tag, error.val);
    throw e;
  }
}

/**
 * Outbound HTTP through the host: only to the plugin's `allowed_hosts`,
 * within its budgets, each call recorded. Every call carries an
 * `Idempotency-Key`: by default `<event id>:<plugin>:<n>`, the same on every
 * retry; pass `idempotencyKey` to choose one, or `""` for none.
 *
 * `sendAfterCommit` queues a request that needs no answer in the outbox: the
 * host sends it once this attempt commits (never if it fails), retried with
 * backoff under the same key (`<event id>:<plugin>:outbox:<n>` by default)
 * while the answer is a 408, 425, 429 or 5xx, and a dead letter after the
 * last try or at any other status (redirects are not followed).
 */
export const http = {
  fetch(method, url, options = {}) {
    const r = hostCall(hostFetch, method, url, options);
    return new Response(r.status, { headers: r.headers, body: r.body });
  },
  sendAfterCommit(method, url, options = {}) {
    hostCall(hostSendAfterCommit, method, url, options);
  },
  /** Queues a POST of `value` as JSON in the outbox. */
  postJsonAfterCommit: (url, value, options = {}) =>
    http.sendAfterCommit("POST", url, { ...options, json: value }),
  get: (url, options) => http.fetch("GET", url, options),
  post: (url, options) => http.fetch("POST", url, options),
  /** POSTs `value` as JSON. */
  postJson: (url, value, options = {}) => http.fetch("POST", url, { ...options, json: value }),
  /** GETs `url` and parses its JSON body; a non-2xx status throws `Retry`. */
  getJson(url, options) {
    const response = http.get(url, options);
    if (!response.ok) throw new Retry(`GET ${url}: status ${response.status}`);
    return response.json();
  },
};
