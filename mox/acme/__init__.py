"""Automatic certificates with ACME (RFC 8555), on the `acme` library (certbot's)."""
