"""dobby: a governed adaptive-learning engine."""

__version__ = "0.1.0"
