"""The I/O the service is handed: revocation feed, login throttle, OAuth providers, avatar files."""
