"""How streams are stored: the unit of work, group commit, the stored-event mapper and snapshots."""
