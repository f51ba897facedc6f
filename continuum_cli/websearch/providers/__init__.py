"""continuum_cli.websearch.providers."""
