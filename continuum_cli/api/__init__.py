"""continuum_cli.api."""
