"""Jobs that read the atlas or the lake and land their results in lake tables (clustering, wiring)."""
