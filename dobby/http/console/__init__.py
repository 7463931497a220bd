"""The console of SPEC §9: server-rendered pages for operators and auditors over the engine's own views."""
