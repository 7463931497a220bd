"""Audit of the log (SPEC §11): histories, chain verification, the Merkle tree, checkpoints and receipts."""
