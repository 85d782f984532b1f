"""Tenants, users, roles and permissions, API keys, quotas, flow control and the audit log."""
