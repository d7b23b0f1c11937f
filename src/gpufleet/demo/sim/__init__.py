"""The living demo: a seeded simulation of a small GPU fleet, reported through the ingest API."""
