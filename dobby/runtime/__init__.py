"""What runs in the background: the log follower, role leadership, processors, tallies, the read-side child."""
