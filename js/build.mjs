// Builds the anywidget module, the standalone page and the stylesheet into
// ../coderchat_ext/static/ (git-ignored; hatch-jupyter-builder runs this on `pip install`).
// `node build.mjs --watch` rebuilds on change (pair with ANYWIDGET_HMR=1).
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.join(here, "..", "coderchat_ext", "static");
const watch = process.argv.includes("--watch");

const options = {
  entryPoints: {
    widget: path.join(here, "src/entries/widget.ts"),
    page: path.join(here, "src/entries/page.ts"),
    chat: path.join(here, "src/chat.css"),
  },
  outdir,
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: !watch,
  sourcemap: watch ? "inline" : false,
  legalComments: "none",
  logLevel: "info",
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
