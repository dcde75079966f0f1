"""mox.config."""
