import { describe, expect, it } from "vitest";
import { renderMarkdown } from "../src/core/markdown";

describe("markdown", () => {
  it("renders markdown and strips scripts, event handlers and javascript: links", () => {
    const el = renderMarkdown("# Title\n\n<img src=x onerror=alert(1)> <script>alert(2)</script> [a](javascript:alert(3)) [ok](https://example.com)");
    expect(el.querySelector("h1")!.textContent).toBe("Title");
    expect(el.querySelector("script")).toBeNull();
    expect(el.querySelector("img")!.hasAttribute("onerror")).toBe(false);
    const links = Array.from(el.querySelectorAll("a"));
    expect(links[0].getAttribute("href")).toBeNull();
    expect(links[1].getAttribute("href")).toBe("https://example.com");
    expect(links[1].getAttribute("rel")).toBe("noopener noreferrer");
  });

  it("wraps code blocks with their language and a copy button", () => {
    const el = renderMarkdown("```python\nprint('hi')\n```");
    const block = el.querySelector(".cc-codeblock")!;
    expect(block.querySelector(".cc-codeblock-lang")!.textContent).toBe("python");
    expect(block.querySelector("pre")!.textContent).toBe("print('hi')\n");
    expect(block.querySelector("button.cc-copy")).not.toBeNull();
  });
});
