"""mox.auth: password storage (scrypt, SCRAM RFC 5802/7677, CRAM-MD5 RFC 2195) and SASL (RFC 4422).

Submodules: password (Credentials), sasl (sans-IO server mechanisms), login (Authenticator).
"""
