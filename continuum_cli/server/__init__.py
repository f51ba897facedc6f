"""continuum_cli.server."""
