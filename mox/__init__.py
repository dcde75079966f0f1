"""mox: a complete, secure, low-maintenance mail server driven by one declarative config."""

__version__ = "0.1.0"
