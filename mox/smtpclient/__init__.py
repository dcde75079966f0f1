"""The SMTP client side: one session to one host, with the TLS policy the queue decided on."""
