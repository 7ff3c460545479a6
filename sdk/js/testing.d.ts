// Types of the offline test harness (testing.js).
import { Event, Exports, HttpError, Provenance, Response } from "./index.js";

export { HttpError, Response };

export interface Call {
  method: string;
  url: string;
  headers: [string, string][];
  body?: Uint8Array;
  idempotencyKey?: string;
  status?: number;
  error?: string;
  json<T = unknown>(): T | undefined;
}

export interface Result {
  outcome: "ok" | "retry" | "reject" | "trap";
  message?: string;
  /** Writes of the attempt; `null` is a delete. */
  kv: Map<string, Uint8Array | null>;
  emitted: { topic: string; body: Uint8Array; idempotencyKey?: string; json<T = unknown>(): T }[];
  logs: { level: string; message: string; fields: Record<string, string> }[];
  calls: Call[];
  /** Requests queued with `http.sendAfterCommit`: sent only if the outcome is "ok". */
  outbox: Omit<Call, "status" | "error">[];
  kvJson<T = unknown>(key: string): T | null | undefined;
}

export type Answer = Response | HttpError | ((call: Call) => Response | HttpError);

export declare function event(
  topic: string,
  init?: {
    json?: unknown;
    body?: Uint8Array | string;
    id?: string;
    idempotencyKey?: string;
    attempt?: number;
    headers?: [string, string][];
    provenance?: Provenance;
  },
): Event;

export declare function manifest(module: Exports): unknown;

export declare function run(
  module: Exports,
  event: Event,
  options?: {
    kv?: Record<string, Uint8Array | string>;
    config?: Record<string, string>;
    http?: Record<string, Answer>;
    plugin?: string;
  },
): Result;
