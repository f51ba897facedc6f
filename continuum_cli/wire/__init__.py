"""continuum_cli.wire."""
