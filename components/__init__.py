"""Reusable Pulumi components of the platform, and the typed declarations that drive them."""
