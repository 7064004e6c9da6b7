/** The records ModelGate keeps: API keys, usage records, audit entries. */
import type { FormatName } from "../formats/types.ts";
import type { Outcome } from "../context.ts";

/** Limits a key carries; null means unlimited. */
export interface KeyLimits {
  quota_tokens: number | null;
  daily_tokens: number | null;
  daily_requests: number | null;
  rpm: number | null;
  burst: number | null;
  tpm: number | null;
  max_concurrency: number | null;
}

/** The names of the limit fields, in the order they are shown. */
export const LIMIT_FIELDS: readonly (keyof KeyLimits)[] = [
  "quota_tokens",
  "daily_tokens",
  "daily_requests",
  "rpm",
  "burst",
  "tpm",
  "max_concurrency",
];

/** Settings a new key takes from the config when it does not set them. */
export type KeyDefaults = KeyLimits & { allowed_models: string[]; allowed_ips: string[] };

/** Defaults that leave a new key unlimited and open to every model and address. */
export const UNLIMITED_DEFAULTS: Readonly<KeyDefaults> = Object.freeze({
  quota_tokens: null,
  daily_tokens: null,
  daily_requests: null,
  rpm: null,
  burst: null,
  tpm: null,
  max_concurrency: null,
  allowed_models: ["*"],
  allowed_ips: [],
});

/** An API key as stored: the plaintext is never part of it. */
export interface KeyRecord extends KeyLimits {
  id: string;
  name: string;
  group: string;
  /** The first characters of the plaintext, for recognising a key in listings. */
  prefix: string;
  /** SHA-256 (hex) of the plaintext. */
  hash: string;
  created_at: string;
  updated_at: string;
  expires_at: string | null;
  disabled: boolean;
  allowed_ips: string[];
  allowed_models: string[];
  default_model: string | null;
  metadata: Record<string, string>;
  /** The hash a rotation replaced, still accepted until `previous_expires_at`. */
  previous_hash: string | null;
  previous_expires_at: string | null;
}

/** Fields an admin may set on a key. */
export type KeyFields = Partial<
  Pick<
    KeyRecord,
    | keyof KeyLimits
    | "name"
    | "group"
    | "expires_at"
    | "disabled"
    | "allowed_ips"
    | "allowed_models"
    | "default_model"
    | "metadata"
  >
>;

/** A key's counters. */
export interface KeyUsage {
  used_tokens: number;
  reserved_tokens: number;
  daily_tokens: number;
  daily_requests: number;
}

/** A key as the admin API shows it: the record without hashes, plus its counters. */
export type KeyView = Omit<KeyRecord, "hash" | "previous_hash"> & { usage: KeyUsage };

/** One request on the ledger. */
export interface UsageRecord {
  request_id: string;
  time: string;
  key_id: string;
  key_group: string;
  /** The model that served the request (after aliases and fallbacks): what it is priced by. */
  model: string;
  /** The model name the client sent. */
  requested_model: string;
  backend: string;
  /** The client's wire format. */
  endpoint: FormatName;
  stream: boolean;
  status: number;
  outcome: Outcome;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  latency_ms: number;
  ttft_ms: number | null;
  client_ip: string;
  cost: number;
  /** False when the backend never reported usage and the tokens are estimated. */
  usage_reported: boolean;
  /** Backends tried (more than 1 after a failover). */
  attempts: number;
  /** Time spent waiting for a free backend slot, in ms. */
  queued_ms: number;
}

/** One row of an aggregate report. */
export interface UsageRow {
  bucket: string;
  subject: string;
  /** The key's name when rows are per key (filled in by the admin API). */
  name?: string | null;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  errors: number;
  cost: number;
  latency_ms_sum: number;
}

/** Who changed what, when. */
export interface AuditEntry {
  time: string;
  actor: string;
  action: string;
  target: string;
  detail: Record<string, unknown>;
}

/** A page of a listing. */
export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}
