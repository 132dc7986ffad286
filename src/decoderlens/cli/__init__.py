"""Command-line interface: one module per command, all thin wrappers around the library."""
