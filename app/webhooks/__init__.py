"""Webhooks: a job's owner called back on its changes, signed per the Standard Webhooks spec.

``fields`` (the request fields), ``secrets`` (each user's signing secret), ``publisher`` (job
updates turned into delivery tasks), ``delivery`` (the tasks and the signed POST) and
``routes``. Nothing is imported here: ``app.jobs.schemas`` imports ``fields`` alone.
"""
