"""Tracking's use cases: acceptance, events, customs, delivery, bulk ingest, lookup."""
