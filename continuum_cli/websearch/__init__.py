"""continuum_cli.websearch."""
