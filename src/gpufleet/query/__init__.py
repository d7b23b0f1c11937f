"""Query parameters → typed queries. Parsing and validation only; no SQL here."""
