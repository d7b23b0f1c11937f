"""The web dashboard: static ES modules served by the API server at ``/``."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
