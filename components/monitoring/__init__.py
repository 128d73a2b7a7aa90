"""What the platform watches and who it tells: Alertmanager routing, alert rules, SLOs and dashboards."""
