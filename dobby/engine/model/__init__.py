"""The aggregates: each stream with its events, its state (a pure fold) and its views.

Importing the model names every stored type in the log (chain.named_in_log), so any reader can resolve any event.
"""

from dobby.engine.model import ledger, policy, proposal, replay, run, target

__all__ = ["ledger", "policy", "proposal", "replay", "run", "target"]
