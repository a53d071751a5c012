"""Prefect flows: one per job. Each is a thin layer over library calls in relance/ and
connectors/, so the same steps run in-process, on a worker, or directly from tests."""
