"""A deterministic simulated organisation: clusters, departments, projects and workloads."""
