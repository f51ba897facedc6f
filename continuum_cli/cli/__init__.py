"""continuum_cli.cli."""
