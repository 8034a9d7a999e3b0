"""The tool interface and the built-in tools (docs/workspaces.md#tools)."""
