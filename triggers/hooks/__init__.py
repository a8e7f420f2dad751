"""Endpoints that outside systems call without a user: push webhooks and job results.

``POST /api/hooks/{pipeline}/`` — a forge's push webhook, authenticated by the
pipeline's webhook secret (``triggers.changes.signature_valid``).
``POST /api/jobs/{token}/result`` — an Invoke Webhook receiver reporting the
result of a job it was sent, authenticated by the job's token.
"""
