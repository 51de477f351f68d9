"""`python -m memorization`: the `memorization` command (memorization.pipeline.cli)."""

from .pipeline.cli import main

main()
