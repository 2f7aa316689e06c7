"""Grafana dashboards: one model, and the platform overview."""
