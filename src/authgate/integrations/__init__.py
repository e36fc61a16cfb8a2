"""Adapters from web frameworks to the framework-free service."""
