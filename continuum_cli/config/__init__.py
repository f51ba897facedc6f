"""continuum_cli.config."""
