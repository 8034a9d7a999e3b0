"""Workspaces on Jupyter kernels: templates, the provisioner, quota, agents and the workspace
service (docs/workspaces.md)."""
