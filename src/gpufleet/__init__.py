"""gpufleet: a self-hosted control plane that speaks the Run:ai Workloads API."""

__version__ = "0.1.0"
