"""The top layer: the CLI, the build orchestration, the audit report and the demo (with its sample corpus).

Layers, bottom up (an import only ever points down):
  circuitlake/  lake boundary, settings, registry, locks, wire formats, DuckDB and SQLMesh access
  ingest/, jobs/  ingest jobs (files -> lake) and compute jobs (wiring from weights, clustering)
  app/  what a user runs: `circuitlake` commands, `build`, the audit report, the demo
"""
