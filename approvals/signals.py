"""Signals of the approvals app.

- ``approval_requested(sender, request_pk)``: a new ApprovalRequest was committed;
  its notifications go out (``approvals.receivers`` enqueues ``tasks.approval_notify``).
  The services announce it rather than import the tasks module, which imports the
  notifications, which use the services.
"""

from django.dispatch import Signal

approval_requested = Signal()
