// Markdown for model text: marked renders, DOMPurify sanitizes (model output is untrusted),
// and each code block gets a copy button.
import DOMPurify from "dompurify";
import { marked } from "marked";
import { copyButton, h } from "./dom";

marked.setOptions({ gfm: true, breaks: false });

/** Sanitized HTML for markdown `text`. Links open in a new tab. */
export function markdownHtml(text: string): string {
  const html = marked.parse(text, { async: false }) as string;
  return DOMPurify.sanitize(html, { USE_PROFILES: { html: true } });
}

/** An element with `text` rendered as sanitized markdown, code blocks with copy buttons. */
export function renderMarkdown(text: string, className = "cc-markdown"): HTMLElement {
  const el = h("div", { class: className });
  el.innerHTML = markdownHtml(text);
  for (const a of Array.from(el.querySelectorAll("a"))) {
    a.setAttribute("target", "_blank");
    a.setAttribute("rel", "noopener noreferrer");
  }
  for (const pre of Array.from(el.querySelectorAll("pre"))) {
    const code = pre.querySelector("code");
    const lang = /language-(\S+)/.exec(code?.className ?? "")?.[1];
    const wrap = h("div", { class: "cc-codeblock" }, h("div", { class: "cc-codeblock-bar" }, h("span", { class: "cc-codeblock-lang" }, lang ?? ""), copyButton(() => (code ?? pre).textContent ?? "")));
    pre.replaceWith(wrap);
    wrap.appendChild(pre);
  }
  return el;
}
