"""DomainKeys Identified Mail (DKIM), RFC 6376 and RFC 8463: the keys; signing comes later."""
