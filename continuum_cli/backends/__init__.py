"""continuum_cli.backends."""
