import { describe, expect, it } from "vitest";
import { SLOW_START_MS, renderCallout, tickCallout } from "../src/core/callout";
import { applyEvents, initialState } from "../src/core/store";
import { ev } from "./frames";

const NOW = Date.parse("2025-01-01T12:00:00Z");

describe("status callout", () => {
  it("starting: a Thinking shimmer that turns into the slow-start text after 15s", () => {
    const s = applyEvents(initialState(), [ev.status("running")]);
    const el = renderCallout(s, "open", NOW, NOW)!;
    expect(el.dataset.phase).toBe("starting");
    expect(el.querySelector(".cc-shimmer")!.textContent).toBe("Thinking…");
    const root = document.createElement("div");
    root.appendChild(el);
    tickCallout(root, NOW + SLOW_START_MS);
    expect(el.querySelector(".cc-shimmer")!.textContent).toBe("Response startup is taking longer than expected");
  });

  it("retrying: kind title, message, attempt, HTTP status and a live countdown", () => {
    const s = applyEvents(initialState(), [ev.status("running"), ev.retry({ attempt: 3, delay_ms: 5000, error: "Too many requests", kind: "rate_limit", provider: "anthropic", status_code: 429, retrying_at: "2025-01-01T12:00:05Z" })]);
    const el = renderCallout(s, "open", NOW, NOW)!;
    expect(el.dataset.phase).toBe("retrying");
    expect(el.classList.contains("cc-callout-warn")).toBe(true);
    expect(el.querySelector(".cc-callout-title")!.textContent).toBe("Rate limited by the model provider");
    expect(el.textContent).toContain("Too many requests");
    expect(el.textContent).toContain("Attempt 3");
    expect(el.textContent).toContain("HTTP 429");
    expect(el.querySelector(".cc-countdown")!.textContent).toBe("Retrying in 5s");
    const root = document.createElement("div");
    root.appendChild(el);
    tickCallout(root, NOW + 3000);
    expect(el.querySelector(".cc-countdown")!.textContent).toBe("Retrying in 2s");
    tickCallout(root, NOW + 6000);
    expect(el.querySelector(".cc-countdown")!.textContent).toBe("Retrying now…");
  });

  it("retrying with kind generic is informational", () => {
    const s = applyEvents(initialState(), [ev.status("running"), ev.retry({ attempt: 1, delay_ms: 1000, error: "x", kind: "generic", retrying_at: "2025-01-01T12:00:01Z" })]);
    expect(renderCallout(s, "open", NOW, NOW)!.classList.contains("cc-callout-info")).toBe(true);
  });

  it("failed: message, detail and HTTP status", () => {
    const s = applyEvents(initialState(), [ev.error({ message: "Authentication failed.", detail: "invalid x-api-key", kind: "auth", provider: "anthropic", retryable: false, status_code: 401 }), ev.status("error")]);
    const el = renderCallout(s, "open", NOW, NOW)!;
    expect(el.dataset.phase).toBe("failed");
    expect(el.getAttribute("role")).toBe("alert");
    expect(el.querySelector(".cc-callout-title")!.textContent).toBe("Authentication failed.");
    expect(el.querySelector(".cc-callout-detail")!.textContent).toBe("invalid x-api-key");
    expect(el.textContent).toContain("HTTP 401");
  });

  it("reconnecting while the transport reconnects; nothing when idle", () => {
    const s = applyEvents(initialState(), [ev.status("waiting")]);
    expect(renderCallout(s, "reconnecting", NOW, NOW)!.textContent).toContain("Reconnecting");
    expect(renderCallout(s, "open", NOW, NOW)).toBeNull();
  });
});
