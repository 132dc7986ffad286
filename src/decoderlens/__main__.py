"""``python -m decoderlens``."""

from decoderlens.cli.app import main

main()
