"""The terminal client: ``gpufleet login``, ``workloads``, ``telemetry``, ``metrics``, ``token``.

It talks to a gpufleet server over HTTP through the public API only, so what it shows is what
the API returns.
"""
