// The status callout, like upstream's ChatStatusCallout (docs/frontend.md#renderer): "starting"
// shimmer, retrying with a live countdown, failed with message/detail/HTTP status, the client's
// own reconnecting notice.
import { h, type Child } from "./dom";
import { secondsUntil } from "./format";
import type { ChatError, ConnectionState } from "../transport/types";
import type { ChatState } from "./store";
import { phase } from "./store";

/** After this long in "starting" the shimmer says the start is slow (docs/frontend.md#renderer). */
export const SLOW_START_MS = 15_000;

const KIND_TITLES: Record<NonNullable<ChatError["kind"]>, string> = {
  overloaded: "The model provider is overloaded",
  rate_limit: "Rate limited by the model provider",
  timeout: "The model provider timed out",
  startup_timeout: "The model did not start answering in time",
  auth: "The model provider rejected the credentials",
  config: "The model is misconfigured",
  usage_limit: "Usage limit reached",
  provider_disabled: "The model provider is disabled",
  missing_key: "The model provider has no API key",
  storage: "The server's disk is full",
  generic: "The model request failed",
};

export function kindTitle(kind: string | undefined): string {
  return (KIND_TITLES as Record<string, string>)[kind ?? "generic"] ?? KIND_TITLES.generic;
}

/** The countdown text for a retry at `retryingAt` (RFC 3339). */
export function countdownText(retryingAt: string, now: number = Date.now()): string {
  const s = secondsUntil(retryingAt, now);
  return s > 0 ? `Retrying in ${s}s` : "Retrying now…";
}

/**
 * The callout for the state, or null when there is nothing to say. `startedAt` is when the
 * current "starting" phase began (ms since epoch). Countdowns and the slow-start text carry
 * `data-cc-until` / `data-cc-since` so `tickCallout` can update them every second.
 */
export function renderCallout(state: ChatState, connection: ConnectionState, startedAt: number, now: number = Date.now()): HTMLElement | null {
  if (connection === "reconnecting") {
    return h("div", { class: "cc-callout cc-callout-info", role: "status", dataset: { phase: "reconnecting" } }, h("span", { class: "cc-spinner" }), " Reconnecting…");
  }
  const p = phase(state);
  if (p === "starting") {
    const slow = now - startedAt >= SLOW_START_MS;
    return h("div", { class: "cc-callout cc-callout-starting", role: "status", dataset: { phase: "starting", ccSince: String(startedAt) } },
      h("span", { class: "cc-shimmer" }, slow ? "Response startup is taking longer than expected" : "Thinking…"));
  }
  if (p === "retrying" && state.retry) {
    const r = state.retry;
    const warn = r.kind && r.kind !== "generic";
    const meta: Child[] = [h("span", { class: "cc-countdown", dataset: { ccUntil: String(r.retrying_at) } }, countdownText(r.retrying_at, now)), h("span", null, `Attempt ${r.attempt}`)];
    if (r.status_code) meta.push(h("span", null, `HTTP ${r.status_code}`));
    if (r.provider) meta.push(h("span", null, r.provider));
    return h("div", { class: `cc-callout ${warn ? "cc-callout-warn" : "cc-callout-info"}`, role: "status", dataset: { phase: "retrying" } },
      h("div", { class: "cc-callout-title" }, kindTitle(r.kind ?? undefined)),
      h("div", { class: "cc-callout-message" }, String(r.error ?? "")),
      h("div", { class: "cc-callout-meta" }, meta));
  }
  if (p === "failed") {
    const e = state.error ?? { message: "The chat failed." };
    const meta: Child[] = [];
    if (e.status_code) meta.push(h("span", null, `HTTP ${e.status_code}`));
    if (e.kind && e.kind !== "generic") meta.push(h("span", null, String(e.kind).replace(/_/g, " ")));
    if (e.provider) meta.push(h("span", null, e.provider));
    return h("div", { class: "cc-callout cc-callout-error", role: "alert", dataset: { phase: "failed" } },
      h("div", { class: "cc-callout-title" }, String(e.message ?? "The chat failed.")),
      e.detail ? h("div", { class: "cc-callout-detail" }, String(e.detail)) : null,
      meta.length ? h("div", { class: "cc-callout-meta" }, meta) : null);
  }
  if (p === "requires_action") {
    const calls = state.actionRequired?.tool_calls ?? [];
    return h("div", { class: "cc-callout cc-callout-info", role: "status", dataset: { phase: "requires_action" } },
      h("div", { class: "cc-callout-title" }, "Waiting for client-side tool results"),
      calls.length ? h("div", { class: "cc-callout-meta" }, calls.map((c) => h("code", null, c.tool_name))) : null);
  }
  return null;
}

/** Update the live countdowns and the slow-start text inside `root`. */
export function tickCallout(root: HTMLElement, now: number = Date.now()): void {
  for (const el of Array.from(root.querySelectorAll<HTMLElement>("[data-cc-until]"))) {
    el.textContent = countdownText(el.dataset.ccUntil!, now);
  }
  for (const el of Array.from(root.querySelectorAll<HTMLElement>("[data-cc-since]"))) {
    const since = Number(el.dataset.ccSince);
    const shimmer = el.querySelector(".cc-shimmer");
    if (shimmer && now - since >= SLOW_START_MS) shimmer.textContent = "Response startup is taking longer than expected";
  }
}
