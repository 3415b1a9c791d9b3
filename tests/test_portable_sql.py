"""Every model and audit transpiles to Spark SQL: the `spark` gateway runs the same project
(tests/test_spark.py builds on it, `make test-spark`); this fast check needs no Spark."""

from __future__ import annotations

from sqlglot import ErrorLevel, exp, parse_one

from circuitlake import project
from circuitlake.settings import project_root

# functions sqlglot passes through unknown, on purpose: the DuckDB lake boundary (macros/lake.py), which
# the spark gateway renders as its own reads; and `hash`, which both engines spell the same (its values differ
# by engine, and the models only compare them within one warehouse: stg.edge_partials' key fingerprint)
PASSED_THROUGH = {"DELTA_SCAN", "HASH"}


def _unknown_functions(query: exp.Expr) -> set[str]:
    """Function calls sqlglot does not know, so writes to Spark unchanged (DuckDB-only names)."""
    return {f.name.upper() for f in query.find_all(exp.Anonymous)} - PASSED_THROUGH


def test_every_model_and_audit_transpiles_to_spark(wh):
    ctx = project.context(wh)
    try:
        queries = {}
        for model in ctx.models.values():
            if not model.is_sql:
                continue
            queries[model.name] = ctx.render(model)
            for audit, args in model.audits_with_args:
                queries[f"{model.name} / {audit.name}"] = model.render_audit_query(audit, **args)
        for audit in ctx.standalone_audits.values():
            queries[audit.name] = audit.render_audit_query()
    finally:
        ctx.close()
    audit_files = {p.stem for p in (project_root() / "audits").glob("*.sql")}
    assert audit_files <= {name.split(" / ")[-1] for name in queries}, "every audit is rendered"
    problems = {}
    for name, query in queries.items():
        try:
            spark_sql = query.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
            parse_one(spark_sql, read="spark")
        except Exception as error:  # noqa: BLE001 - reported per query below
            problems[name] = str(error).splitlines()[0]
            continue
        if unknown := _unknown_functions(query):
            problems[name] = f"DuckDB-only functions: {sorted(unknown)}"
    assert not problems, problems
