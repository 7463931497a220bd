"""The `dobby` command (SPEC §7): one module per command group."""

from dobby.cli.command import main

__all__ = ["main"]
