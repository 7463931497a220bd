"""Adapters: the outside world behind the engine's ports, and settings."""
