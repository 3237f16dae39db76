"""Fake BFL, Runway and Replicate servers (and fake-gcs-server as a subprocess) on 127.0.0.1,
for the adapter tests and for running the app against them (``python -m tests.providers.fakes``)."""
