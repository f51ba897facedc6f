"""continuum_cli.upstream."""
