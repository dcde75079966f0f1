"""`python -m mox` runs the command line."""

from mox.cli import main

main()
