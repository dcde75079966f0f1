"""mox.junk: the per-account junk filter, as mox's (reference §1.2, §1.3): reputation from the
account's Junk/NotJunk history, a Bayesian content filter trained from flags, DNS blocklists
(RFC 5782), and a Rejects mailbox for refused junk."""
