// Formatting helpers for cards and message footers.

/** "850ms", "3.2s", "2m 5s". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  return `${m}m ${Math.round(s - m * 60)}s`;
}

/** 1234 → "1.2k". */
export function formatTokens(n: number | null | undefined): string {
  if (!n) return "0";
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

/** Micro-dollars → "$0.0123". */
export function formatCost(micros: number | null | undefined): string {
  if (micros === null || micros === undefined) return "";
  const usd = micros / 1_000_000;
  if (usd === 0) return "$0";
  if (usd < 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(2)}`;
}

/** Seconds from now until RFC 3339 `iso` (never negative). */
export function secondsUntil(iso: string, now: number = Date.now()): number {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return 0;
  return Math.max(0, Math.ceil((t - now) / 1000));
}

/** A JSON value as readable text: strings as they are, the rest pretty-printed. */
export function asText(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

/** Parse a JSON string result into a value; other values are returned as they are. */
export function parseResult(value: unknown): unknown {
  if (typeof value !== "string") return value;
  const t = value.trim();
  if (!(t.startsWith("{") || t.startsWith("["))) return value;
  try {
    return JSON.parse(t);
  } catch {
    return value;
  }
}

/** The tool call's arguments: `args` when complete, else the streamed text parsed if it can be. */
export function callArgs(part: any, argsText?: string): Record<string, any> {
  if (part?.args && typeof part.args === "object") return part.args;
  if (typeof part?.args === "string") {
    const parsed = parseResult(part.args);
    if (parsed && typeof parsed === "object") return parsed as Record<string, any>;
  }
  if (argsText) {
    try {
      const parsed = JSON.parse(argsText);
      if (parsed && typeof parsed === "object") return parsed;
    } catch {
      // Still streaming: a prefix of the JSON.
    }
  }
  return {};
}
