"""SMTP protocol primitives (RFC 5321): reply codes, paths and parameters, DATA framing.

Pure code, no sockets: `mox.smtpserver` (and later the SMTP client of the queue) build on it.
"""
