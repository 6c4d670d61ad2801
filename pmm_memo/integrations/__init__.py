"""Integrations that add caching to third-party clients without editing call sites."""
