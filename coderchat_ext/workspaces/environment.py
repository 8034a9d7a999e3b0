"""The environment of a workspace kernel: an allowlist of the server's variables, never a secret.

The server's environment holds provider keys (``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``), the
server token the app exports for notebook kernels (``CODERCHAT_TOKEN``, ``CODERCHAT_URL``),
Jupyter's and JupyterHub's tokens. A workspace kernel runs whatever the model asks, so it gets
only what a shell needs (:data:`BASE_NAMES`, ``LC_*``), the variables its template declares in
``env_passthrough``, and the workspace's own variables (parameters, ``CODERCHAT_WORKSPACE_*``);
a name :func:`never_passed` refuses, or a value holding a known secret, is dropped even when a
template asks for it. The kernel
manager adds the kernelspec's ``env`` and its own ``JPY_*`` bookkeeping (parent pid, session
name) on top; the init script runs in the kernel, so it sees the same environment.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Protocol

BASE_NAMES = frozenset(
    {"PATH", "HOME", "LANG", "LANGUAGE", "TERM", "TMPDIR", "USER", "LOGNAME", "SHELL", "TZ"}
)
"""The server's variables every workspace kernel gets (when set)."""
BASE_PATTERNS = ("LC_*",)

_NEVER_PREFIX = re.compile(r"^(ANTHROPIC_|OPENAI_|CODERCHAT_|JPY_|JUPYTERHUB_|JUPYTER_TOKEN$)")

SECRET_NAME = re.compile(r"(^|_)(API_?KEY|KEY|TOKEN|CREDENTIALS?)(_|$)|SECRET|PASSWORD|PASSWD")
"""Names of environment variables whose values are secrets: keys, tokens, secrets, passwords
(``ANTHROPIC_API_KEY``, ``CODERCHAT_TOKEN``, ``JUPYTER_TOKEN``, ``JPY_API_TOKEN``,
``AWS_SECRET_ACCESS_KEY``, ``PGPASSWORD``)."""


def is_secret_name(name: str) -> bool:
    """Whether the environment variable ``name`` must be treated as a secret (case-insensitive;
    see :data:`SECRET_NAME`)."""
    return SECRET_NAME.search(name.upper()) is not None


class SecretSource(Protocol):
    """Where the known secret values come from (``chatd.secrets.SecretValues`` fits)."""

    async def current(self) -> frozenset[str]:
        """Every secret value known now (provider keys, the server's token)."""
        ...


def never_passed(name: str) -> bool:
    """Whether the server's variable ``name`` is kept from every workspace kernel: provider
    variables (``ANTHROPIC_*``, ``OPENAI_*``), the discovery variables (``CODERCHAT_*``),
    Jupyter's session secrets (``JUPYTER_TOKEN``, ``JPY_*``, ``JUPYTERHUB_*``), and anything
    named like a key, token, secret or password
    (:func:`is_secret_name`)."""
    return _NEVER_PREFIX.match(name.upper()) is not None or is_secret_name(name)


def kernel_environment(
    environ: Mapping[str, str],
    *,
    passthrough: Iterable[str] = (),
    own: Mapping[str, str] | None = None,
    secret_values: Iterable[str] = (),
) -> dict[str, str]:
    """The environment a workspace kernel starts with: the variables of ``environ`` (the
    server's) named in :data:`BASE_NAMES`, matching :data:`BASE_PATTERNS` or one of
    ``passthrough`` (names or ``fnmatch`` patterns such as ``PIP_*``), minus those
    :func:`never_passed` refuses and those whose value contains one of ``secret_values`` (the
    configured provider keys, the server's token); then ``own`` (the workspace's variables, as
    the build gives them) on top."""
    patterns = (*BASE_PATTERNS, *passthrough)
    secrets = [v for v in secret_values if v]
    env = {
        name: value
        for name, value in environ.items()
        if (name in BASE_NAMES or any(fnmatch.fnmatchcase(name, p) for p in patterns))
        and not never_passed(name)
        and not any(secret in value for secret in secrets)
    }
    env.update(own or {})
    return env
