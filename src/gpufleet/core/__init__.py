"""What every layer shares and that depends on nothing else of gpufleet.

Domain errors, time arithmetic and formatting, the workload field catalogue and the value
types that cross between the store and the metrics backends. Modules here import only the
standard library, so any package may import them without creating a cycle.
"""
