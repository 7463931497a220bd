"""The read side: query tables folded from the event log, their runner, rebuild, verify, and the processors."""
