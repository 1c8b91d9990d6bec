"""X.509 security: certificates, chains, RFC 3820 proxies carrying the DIRAC group, locations, properties."""
