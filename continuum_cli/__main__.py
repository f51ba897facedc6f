"""`python -m continuum_cli`."""
from continuum_cli.cli import main

main()
