"""Deployment helpers: TLS for development, the nginx configuration."""
