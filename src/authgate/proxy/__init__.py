"""The front proxy: the nginx site configuration for the settings, and TLS for development."""
