"""``python -m authgate``: the CLI."""

from authgate.cli import main

main()
