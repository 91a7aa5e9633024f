"""Tests of reactive_store.admin: the Convex CLI's `_system/cli/...` functions."""
