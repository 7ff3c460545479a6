// Types of the Hookhost JavaScript SDK (index.js).

export type Provenance =
  | { kind: "api" }
  | { kind: "source"; source: string; verified: boolean }
  | { kind: "emitted"; plugin: string }
  | { kind: "schedule"; plugin: string; schedule: string };

/** One delivery of a stored event to this handler. */
export declare class Event {
  readonly id: string;
  readonly topic: string;
  readonly idempotencyKey?: string;
  readonly receivedAtMs: number;
  readonly attempt: number;
  readonly headers: [string, string][];
  readonly contentType?: string;
  readonly body: Uint8Array;
  readonly provenance?: Provenance;
  /** The body parsed as JSON; a body that is not JSON rejects the event. */
  json<T = unknown>(): T;
  text(): string;
  header(name: string): string | undefined;
  verifiedBy(source: string): boolean;
}

/** Fail this attempt and ask for another, by the retry policy. */
export declare class Retry extends Error {}
/** Fail for good: the delivery goes to the dead letters. */
export declare class Reject extends Error {}

export type HttpErrorKind = "denied" | "timeout" | "too-large" | "invalid" | "failed";
/** An outbound call that produced no response. */
export declare class HttpError extends Error {
  constructor(kind: HttpErrorKind, message: string);
  readonly kind: HttpErrorKind;
  readonly detail: string;
}

export interface RetryPolicy {
  maxAttempts?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface Schedule {
  /** The event's topic is `schedule.<name>`. */
  name: string;
  /** Six fields, seconds first, UTC. */
  cron: string;
}

export interface HandlerSpec {
  subscriptions: string[];
  retry?: RetryPolicy;
  schedules?: Schedule[];
  /** Return to succeed; throw Retry or Reject to fail; anything else traps. */
  handle(event: Event): void;
}

export interface Exports {
  describe(): unknown;
  handle(event: unknown): void;
}

/** `export const { describe, handle } = handler({ ... })`. */
export declare function handler(spec: HandlerSpec): Exports;

export declare const kv: {
  get(key: string): Uint8Array | undefined;
  getText(key: string): string | undefined;
  set(key: string, value: Uint8Array | string): void;
  delete(key: string): void;
  getJson<T = unknown>(key: string, fallback?: T): T | undefined;
  setJson(key: string, value: unknown): void;
  increment(key: string, by?: number): number;
};

type Fields = Record<string, unknown>;
export declare const log: {
  trace(message: string, fields?: Fields): void;
  debug(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
};

export declare function emit(topic: string, body: Uint8Array | string, idempotencyKey?: string): void;
export declare function emitJson(topic: string, value: unknown, idempotencyKey?: string): void;

export declare const config: {
  get(key: string, fallback?: string): string | undefined;
  require(key: string): string;
};

export declare class Response {
  constructor(status: number, init?: { headers?: [string, string][]; body?: Uint8Array | string });
  readonly status: number;
  readonly headers: [string, string][];
  readonly body: Uint8Array;
  readonly ok: boolean;
  header(name: string): string | undefined;
  text(): string;
  json<T = unknown>(): T;
}

export interface RequestOptions {
  headers?: Record<string, string> | [string, string][];
  body?: Uint8Array | string;
  json?: unknown;
  /** Defaults to `<event id>:<plugin>:<n>`; `""` sends none. */
  idempotencyKey?: string;
  timeoutMs?: number;
}

export declare const http: {
  fetch(method: string, url: string, options?: RequestOptions): Response;
  get(url: string, options?: RequestOptions): Response;
  post(url: string, options?: RequestOptions): Response;
  postJson(url: string, value: unknown, options?: RequestOptions): Response;
  /** Queues the request in the outbox, sent by the host once the attempt commits. */
  sendAfterCommit(method: string, url: string, options?: RequestOptions): void;
  postJsonAfterCommit(url: string, value: unknown, options?: RequestOptions): void;
  getJson<T = unknown>(url: string, options?: RequestOptions): T;
};
