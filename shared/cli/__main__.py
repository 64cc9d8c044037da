"""`python -m shared.cli`: the same as `ksnode`."""

from shared.cli import main

main()
