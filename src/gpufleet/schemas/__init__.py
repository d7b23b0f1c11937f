"""The wire contract: pydantic models shaped exactly like the reference Workloads API."""
