"""A real ``jupyter server`` process with coderchat_ext on the offline demo model, shared by
the notebook, magics and widget relay tests."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.jupyter_process import ROOT, start_jupyter

TOKEN = "frontend-test-token"

__all__ = ["ROOT", "TOKEN"]


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``{url, token, tmp, env}``: ``env`` (JSON) is the environment for kernels that should
    find this server (``CODERCHAT_URL``/``CODERCHAT_TOKEN`` set)."""
    tmp = tmp_path_factory.mktemp("fe")
    jupyter = start_jupyter(
        tmp,
        token=TOKEN,
        coderchat={
            "db_path": str(tmp / "chat.db"),
            "acquire_interval": 0.05,
            "template_paths": [str(ROOT / "notebooks" / "templates")],
        },
    )
    kernel_env = {**jupyter.env, "CODERCHAT_URL": jupyter.url, "CODERCHAT_TOKEN": TOKEN}
    try:
        yield {"url": jupyter.url, "token": TOKEN, "tmp": str(tmp), "env": json.dumps(kernel_env)}
    finally:
        jupyter.stop()
