"""mox.smtpserver."""
