"""Shared vocabulary of the engine: canonical JSON and hashes, time, errors, field types and the ports."""
