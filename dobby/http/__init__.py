"""The HTTP surface of SPEC §4: a thin Starlette adapter over the engine and the projection queries."""
