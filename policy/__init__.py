"""The platform's policy rules: one implementation for the Pulumi policy pack (`__main__.py`),
the offline preview (`make preview`) and plain manifests (`make check`)."""
