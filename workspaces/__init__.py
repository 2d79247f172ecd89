"""Workspaces and workspace memberships (tenant schema). Filled by the organization-administration issue."""
