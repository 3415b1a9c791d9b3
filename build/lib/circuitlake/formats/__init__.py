"""Pydantic models of the external wire formats, one file per format."""
