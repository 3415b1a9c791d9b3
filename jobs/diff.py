"""`circuitlake diff OLD NEW`: what changed between two builds of an atlas.

Each side is an atlas file written by `circuitlake export --layout circuitlake` or a warehouse folder
(its DuckDB file, one atlas of it). Compared:

* edges (by method and endpoints, for the methods both sides hold: an export holds one): appeared,
  disappeared, and changed, when the mean |weight| moved by more than `factor` either way (new / old >
  factor or < 1 / factor);
* labels: neurons of both sides whose atlas label differs (null to text counts; text to null too);
* modules: neurons clustered on both sides whose top-level module moved. Infomap numbers modules anew
  at each run, so each new module is matched to the old module most of its members came from (ties:
  the lower number); a neuron moved when its old module is not its new module's match. With it the
  adjusted mutual information (AMI, arithmetic normalisation) of the two top-level clusterings: 1 when
  they agree up to renaming, about 0 for chance agreement.

Both sides are attached read-only; nothing is written.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from sqlglot import exp, parse_one

from circuitlake import duck
from circuitlake.errors import UserError
from circuitlake.settings import warehouse

EDGE_KEY = ("method", "src_layer", "src_neuron", "tgt_layer", "tgt_neuron")


@dataclass
class AtlasDiff:
    """The counts, the AMI, and up to `limit` examples of each kind (strongest or largest change first)."""

    old: str
    new: str
    atlas: str
    factor: float
    methods: list[str] = field(default_factory=list)  # the edge methods both sides hold (compared)
    counts: dict[str, int] = field(default_factory=dict)
    ami: float | None = None
    edges_appeared: list[dict[str, Any]] = field(default_factory=list)
    edges_disappeared: list[dict[str, Any]] = field(default_factory=list)
    edges_changed: list[dict[str, Any]] = field(default_factory=list)
    labels_changed: list[dict[str, Any]] = field(default_factory=list)
    neurons_moved: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _attach(con: duckdb.DuckDBPyConnection, alias: str, path: Path, atlas: str | None) -> str:
    """Attach one side read-only and create views `<alias>_neurons` and `<alias>_edges` over its atlas;
    returns the atlas name."""
    if path.is_dir():
        file, from_warehouse = warehouse(path).duckdb, True
    elif path.is_file():
        file, from_warehouse = path, False
    else:
        raise UserError(f"{path}: no such atlas file or warehouse folder")
    if not file.exists():
        raise UserError(f"{path} holds no build yet: run `circuitlake build` there first")
    try:
        con.execute(f"attach {duck.sql_string(file)} as {alias} (read_only)")
    except duckdb.IOException as e:
        lock = "lock" in str(e).lower()
        raise UserError(f"{file} is open in another process: retry when it is done" if lock else f"{file}: {e}") from None
    tables = {t for (t,) in con.execute("select table_name from information_schema.tables where table_catalog = ?", [alias]).fetchall()}
    if not {"neurons", "edges"} <= tables:
        raise UserError(f"{path} is not a circuitlake atlas: it has no neurons and edges tables")
    if from_warehouse:
        neurons, edges = (_physical(con, alias, view) for view in ("neurons", "edges"))
        names = [a for (a,) in con.execute(f"select distinct atlas from {neurons} order by 1").fetchall()]
        if atlas is None and len(names) != 1:
            raise UserError(f"{path} holds atlases {', '.join(names)}: choose one with --atlas")
        name = atlas or names[0]
        if name not in names:
            raise UserError(f"{path} has no atlas {name!r}: it holds {', '.join(names) or 'none'}")
        only = f"where atlas = {duck.sql_string(name)}"
        con.execute(f"create temp view {alias}_neurons as select * exclude (atlas) from {neurons} {only}")
        con.execute(f"create temp view {alias}_edges as select * exclude (atlas) from {edges} {only}")
        return name
    found = con.execute(f"select value from {alias}.main.metadata where key = 'atlas'").fetchone()
    name = found[0] if found else path.stem
    if atlas is not None and atlas != name:
        raise UserError(f"{path} is an export of atlas {name!r}, not {atlas!r}")
    con.execute(f"create temp view {alias}_neurons as select * from {alias}.main.neurons")
    con.execute(f"create temp view {alias}_edges as select * from {alias}.main.edges")
    return name


def _physical(con: duckdb.DuckDBPyConnection, alias: str, view: str) -> str:
    """The table behind a warehouse's published view (SQLMesh's `main.<view>` names the table under the
    file's own catalog, `circuitlake`, which the attached file is not called here)."""
    found = con.execute(
        "select sql from duckdb_views() where database_name = ? and schema_name = 'main' and view_name = ?", [alias, view]
    ).fetchone()
    if not found:
        return f"{alias}.main.{view}"
    create = parse_one(found[0], read="duckdb")
    table = (create.expression if isinstance(create, exp.Create) else create).find(exp.Table)
    if table is None:
        raise UserError(f"{alias} side: view main.{view} reads no table ({found[0]})")
    return f'{alias}."{table.db}"."{table.name}"'


def _records(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    rel = con.execute(sql, params or [])
    columns = [d[0] for d in rel.description]
    return [dict(zip(columns, r, strict=True)) for r in rel.fetchall()]


def adjusted_mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """AMI of two labelings of the same items (arithmetic mean of the entropies, as scikit-learn's default):
    (MI - E[MI]) / (mean(H(a), H(b)) - E[MI]), E[MI] under the hypergeometric model of random labelings."""
    n = len(a)
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1), dtype=np.int64)
    np.add.at(table, (ai, bi), 1)
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    if len(rows) == len(cols) == 1 or len(rows) == len(cols) == n:
        return 1.0  # both one cluster, or both every item alone: identical up to renaming
    nz = table[table > 0]
    mi = float(np.sum(nz / n * (np.log(nz) + math.log(n) - np.log(rows[np.nonzero(table)[0]]) - np.log(cols[np.nonzero(table)[1]]))))
    h_a = -float(np.sum(rows / n * np.log(rows / n)))
    h_b = -float(np.sum(cols / n * np.log(cols / n)))
    emi = _expected_mutual_information(rows, cols, n)
    denominator = (h_a + h_b) / 2 - emi
    if abs(denominator) < 1e-15:
        return 0.0
    return (mi - emi) / denominator


def _expected_mutual_information(rows: np.ndarray, cols: np.ndarray, n: int) -> float:
    """E[MI] of two random labelings with these cluster sizes (Vinh, Epps and Bailey 2010), summed over
    distinct pairs of sizes (clusters of equal size contribute equally)."""
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))])  # log(i!)
    row_sizes, row_times = np.unique(rows, return_counts=True)
    col_sizes, col_times = np.unique(cols, return_counts=True)
    emi = 0.0
    for a, times_a in zip(row_sizes.tolist(), row_times.tolist(), strict=True):
        for b, times_b in zip(col_sizes.tolist(), col_times.tolist(), strict=True):
            k = np.arange(max(1, a + b - n), min(a, b) + 1)
            if not len(k):
                continue
            term = k / n * (np.log(k) + math.log(n) - math.log(a) - math.log(b))
            log_p = (
                log_fact[a] + log_fact[b] + log_fact[n - a] + log_fact[n - b] - log_fact[n]
                - log_fact[k] - log_fact[a - k] - log_fact[b - k] - log_fact[n - a - b + k]
            )  # fmt: skip
            emi += times_a * times_b * float(np.sum(term * np.exp(log_p)))
    return emi


def diff(old: Path, new: Path, atlas: str | None = None, factor: float = 2.0, limit: int = 25) -> AtlasDiff:
    """Compare two builds of one atlas (see the module docstring)."""
    if factor <= 1:
        raise UserError(f"--factor {factor}: a change factor is above 1 (2 = doubled or halved)")
    con = duckdb.connect()
    try:
        old_name = _attach(con, "old", old, atlas)
        new_name = _attach(con, "new", new, atlas)
        if old_name != new_name:
            raise UserError(f"{old} is atlas {old_name!r} and {new} is atlas {new_name!r}: compare two builds of one atlas")
        result = AtlasDiff(str(old), str(new), new_name, factor)
        on = " and ".join(f"o.{c} = n.{c}" for c in EDGE_KEY)
        key = ", ".join(f"{c}" for c in EDGE_KEY)
        # an export holds one edge method: only the methods both sides hold are compared
        methods = [
            m
            for (m,) in con.execute(
                "select distinct method from old_edges intersect select distinct method from new_edges order by 1"
            ).fetchall()
        ]
        result.methods = methods
        edges = f"""
            select {", ".join(f"coalesce(n.{c}, o.{c}) as {c}" for c in EDGE_KEY)},
                   o.mean_abs_weight as old_mean_abs_weight, n.mean_abs_weight as new_mean_abs_weight,
                   o.count as old_count, n.count as new_count
            from (select * from old_edges where method in (select unnest({methods!r}::varchar[]))) as o
            full join (select * from new_edges where method in (select unnest({methods!r}::varchar[]))) as n on {on}"""
        con.execute(f"create temp view edge_pairs as {edges}")
        appeared = "old_mean_abs_weight is null"
        disappeared = "new_mean_abs_weight is null"
        # changed: the mean |weight| moved by more than `factor` either way
        changed = "new_mean_abs_weight > old_mean_abs_weight * $1 or new_mean_abs_weight * $1 < old_mean_abs_weight"
        for name, where, order in (
            ("edges_appeared", appeared, "new_mean_abs_weight desc"),
            ("edges_disappeared", disappeared, "old_mean_abs_weight desc"),
            (
                "edges_changed",
                f"not ({appeared}) and not ({disappeared}) and ({changed})",
                "abs(ln(new_mean_abs_weight / old_mean_abs_weight)) desc",
            ),
        ):
            params = [factor] if name == "edges_changed" else []
            result.counts[name] = duck.scalar(con, f"select count(*) from edge_pairs where {where}", params)
            records = _records(con, f"select * from edge_pairs where {where} order by {order}, {key} limit {int(limit)}", params)
            setattr(result, name, records)
        both = "from old_neurons as o join new_neurons as n on o.layer = n.layer and o.neuron = n.neuron"
        result.counts["neurons_added"] = duck.scalar(
            con, "select count(*) from new_neurons as n anti join old_neurons as o on o.layer = n.layer and o.neuron = n.neuron"
        )
        result.counts["neurons_removed"] = duck.scalar(
            con, "select count(*) from old_neurons as o anti join new_neurons as n on o.layer = n.layer and o.neuron = n.neuron"
        )
        label_changed = "o.label is distinct from n.label"
        result.counts["labels_changed"] = duck.scalar(con, f"select count(*) {both} where {label_changed}")
        changed_labels = f"select n.layer, n.neuron, o.label as old_label, n.label as new_label {both} where {label_changed}"
        result.labels_changed = _records(con, f"{changed_labels} order by 1, 2 limit {int(limit)}")
        _modules(con, result, both, limit)
    finally:
        con.close()
    return result


def _modules(con: duckdb.DuckDBPyConnection, result: AtlasDiff, both: str, limit: int) -> None:
    """Moved neurons (against each new module's best-matching old module) and the AMI."""
    con.execute(
        f"""create temp table clustered as
            select n.layer, n.neuron, o.top_cluster as old_module, n.top_cluster as new_module, n.label
            {both} where o.top_cluster is not null and n.top_cluster is not null"""
    )
    pairs = con.execute("select old_module, new_module from clustered").fetchnumpy()
    if len(pairs["old_module"]) == 0:
        result.counts["neurons_moved"] = 0
        return
    result.ami = round(adjusted_mutual_information(np.asarray(pairs["old_module"]), np.asarray(pairs["new_module"])), 6)
    con.execute(
        """create temp table matched as
           select new_module, arg_min(old_module, (-members, old_module)) as origin
           from (select new_module, old_module, count(*) as members from clustered group by all)
           group by new_module"""
    )
    moved = "from clustered as c join matched as m using (new_module) where c.old_module <> m.origin"
    result.counts["neurons_moved"] = duck.scalar(con, f"select count(*) {moved}")
    columns = "c.layer, c.neuron, c.label, c.old_module, c.new_module, m.origin as new_module_came_from"
    result.neurons_moved = _records(con, f"select {columns} {moved} order by 1, 2 limit {int(limit)}")
