"""The running server: wiring config, store, authentication and protocol listeners together."""
