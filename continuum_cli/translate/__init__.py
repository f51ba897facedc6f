"""continuum_cli.translate."""
