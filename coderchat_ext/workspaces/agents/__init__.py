"""Workspace agents on Jupyter kernels, the daemon side (docs/workspaces.md#agents).

- :mod:`.protocol`: the wire to an agent's kernel (the runtime's injection, ``execute_request``
  calls answered by one :data:`RESULT_MIME` bundle, the handshake, subshells) and the texts of
  the connection errors;
- :mod:`.lifecycle`: :class:`AgentManager` (start, attach, stop, liveness and status, the start
  budget) and the :class:`AgentResolver` the tools find their agent through.

The names the rest of the package uses are re-exported here.
"""

from __future__ import annotations

from .lifecycle import (
    CONNECT_TIMEOUT,
    DEFAULT_CALL_TIMEOUT,
    POLL_INTERVAL,
    START_TIMEOUT,
    AgentHandle,
    AgentManager,
    AgentResolver,
    FixedAgentResolver,
)
from .protocol import (
    AGENT_DISCONNECTED,
    AGENT_TIMEOUT,
    NO_RUNNING_AGENT,
    NO_WORKSPACE,
    RESULT_MIME,
    RUNTIME_MODULE,
    AgentError,
    AgentStatus,
    AgentUnavailable,
    OutputCallback,
)

__all__ = [
    "AGENT_DISCONNECTED",
    "AGENT_TIMEOUT",
    "CONNECT_TIMEOUT",
    "DEFAULT_CALL_TIMEOUT",
    "NO_RUNNING_AGENT",
    "NO_WORKSPACE",
    "POLL_INTERVAL",
    "RESULT_MIME",
    "RUNTIME_MODULE",
    "START_TIMEOUT",
    "AgentError",
    "AgentHandle",
    "AgentManager",
    "AgentResolver",
    "AgentStatus",
    "AgentUnavailable",
    "FixedAgentResolver",
    "OutputCallback",
]
