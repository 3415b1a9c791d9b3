"""Ingest jobs: each reads one kind of research output and lands it in the Delta lake."""
