"""Promotion from staging to prod behind gates (docs/delivery.md): `make promote SERVICE=<name>`."""
