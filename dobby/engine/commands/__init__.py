"""The command families of SPEC §4, one module each, over one context."""
