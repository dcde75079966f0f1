"""DomainKeys Identified Mail (DKIM), RFC 6376 and RFC 8463: the keys (`keys`), signing (`sign`)
and verification (`verify`)."""
