"""Persistence: tables, the dialect seam, queries and migrations."""
