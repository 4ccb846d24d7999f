"""The package version: one place, read by the package, the CLI, /_emu/health and packaging."""

__version__ = "0.1.0"
