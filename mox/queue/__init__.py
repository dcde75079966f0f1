"""The outgoing queue: persistent, retrying, with DSNs (RFC 3464) and transport security."""
