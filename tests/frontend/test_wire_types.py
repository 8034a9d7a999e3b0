"""The TypeScript wire types (js/src/transport/api.ts) are generated from the served OpenAPI
document, never edited by hand: a fresh generation must equal the committed file."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from coderchat_ext.server.openapi import openapi_document

JS = Path(__file__).resolve().parents[2] / "js"


def test_committed_wire_types_match_the_openapi_document() -> None:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "json-schema-to-typescript").is_dir():
        pytest.fail("the wire-type check needs Node.js and `npm ci` in js/ (scripts/checks.sh)")
    document = json.dumps(openapi_document("/"), sort_keys=True)
    generated = subprocess.run(
        [node, "scripts/gen-types.mjs"],
        input=document,
        capture_output=True,
        text=True,
        cwd=JS,
        check=True,
        timeout=60,
    ).stdout
    committed = (JS / "src" / "transport" / "api.ts").read_text()
    assert generated == committed, (
        "js/src/transport/api.ts is stale: run `npm --prefix js run gen:types` and commit it"
    )
