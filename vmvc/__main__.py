"""`python -m vmvc` is the same as the `vmvc` command."""

from vmvc.cli import main

main()
