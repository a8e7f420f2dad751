"""Observability: counters kept in the database, structured logs, the audit trail, metrics.

The models and write functions here (``counters``, ``audit``, ``logs``) import
nothing from the other apps, so every app's services can call them; the
surfaces (``metrics`` view, the audit pages and API) read the other apps.
"""
