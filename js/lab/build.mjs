// Bundles the plugin with the shared renderer and server transport (../../src, imported by
// relative path) into lib/index.js; `jupyter-builder build .` then turns lib/ into the prebuilt
// labextension in ../../coderchat_ext/labextension. JupyterLab and Lumino packages stay
// external: the labextension shares JupyterLab's own copies (module federation).
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));

await esbuild.build({
  entryPoints: [path.join(here, "src", "index.ts")],
  outfile: path.join(here, "lib", "index.js"),
  bundle: true,
  format: "esm",
  target: "es2020",
  external: ["@jupyterlab/*", "@lumino/*"],
  // The renderer's CSS comes in through style/index.css, which the labextension builder
  // handles; the bundle itself carries only code.
  loader: { ".css": "empty" },
  legalComments: "none",
  logLevel: "info",
});
