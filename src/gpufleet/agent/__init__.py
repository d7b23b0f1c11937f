"""The cluster agent: watch Kubernetes and keep the server's workload records true to it."""
