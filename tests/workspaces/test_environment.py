"""The environment a workspace kernel starts with: the allowlist, the template's
``env_passthrough``, the workspace's own variables, and never a secret."""

from __future__ import annotations

import pytest

from coderchat_ext.workspaces.environment import kernel_environment
from coderchat_ext.workspaces.templates import TemplateError, parse_manifest

KEY = "sk-ant-api03-abcdefghijklmnop"
SERVER = {
    "PATH": "/usr/bin",
    "HOME": "/home/u",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TZ": "UTC",
    "ANTHROPIC_API_KEY": KEY,
    "ANTHROPIC_BASE_URL": "http://127.0.0.1:9/",
    "OPENAI_API_KEY": "sk-openai-0000000000",
    "CODERCHAT_TOKEN": "0123456789abcdef",
    "CODERCHAT_URL": "http://127.0.0.1:8888/",
    "JUPYTER_TOKEN": "0123456789abcdef",
    "JPY_API_TOKEN": "0123456789abcdef",
    "JUPYTERHUB_API_URL": "http://hub/",
    "PIP_INDEX_URL": "https://pypi.example/simple",
    "PIP_TOKEN": "pip-token-000000",
    "COPY_OF_KEY": f"x{KEY}",
    "UNRELATED": "left out",
}


def test_only_the_allowlist_and_the_workspace_variables_reach_the_kernel() -> None:
    env = kernel_environment(SERVER, own={"REGION": "eu", "CODERCHAT_WORKSPACE_ID": "w1"})
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "REGION": "eu",
        "CODERCHAT_WORKSPACE_ID": "w1",
    }


def test_passthrough_adds_names_and_patterns_but_never_a_secret() -> None:
    env = kernel_environment(
        SERVER,
        passthrough=["PIP_*", "COPY_OF_KEY", "A*", "C*", "J*"],
        secret_values=[KEY],
    )
    assert set(env) - {"PATH", "HOME", "LANG", "LC_ALL", "TZ"} == {"PIP_INDEX_URL"}


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("ANTHROPIC_API_KEY", "may hold a secret"),
        ("OPENAI_*", "may hold a secret"),
        ("CODERCHAT_URL", "may hold a secret"),
        ("GITHUB_TOKEN", "may hold a secret"),
        ("JPY_*", "may hold a secret"),
        ("*", "is not a variable name"),
        ("A-B", "is not a variable name"),
    ],
)
def test_a_template_cannot_pass_a_secret_through(entry: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=problem):
        parse_manifest(f'name = "t"\nenv_passthrough = ["{entry}"]\n')


def test_a_template_declares_what_it_passes_through() -> None:
    manifest = parse_manifest('name = "t"\nenv_passthrough = ["PIP_INDEX_URL", "CONDA_*"]\n')
    assert manifest.env_passthrough == ["PIP_INDEX_URL", "CONDA_*"]
