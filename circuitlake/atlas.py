"""The Python API for notebooks: one atlas of a built warehouse, over a read-only DuckDB connection.

    import circuitlake
    atlas = circuitlake.open("warehouse", "qwen3-32b")   # the atlas may be left out when it is the only one
    n = atlas.neuron(24, 5326)                            # or atlas.neuron("L24/N5326")
    n.downstream(10).df()                                 # strongest downstream edges with neighbours' labels
    atlas.search("aspirin dosing").pl()

Every method that returns rows returns a lazy DuckDB relation (`.df()`, `.pl()`, `.arrow()`, `.fetchall()`,
or more SQL on top); nothing is read until asked. Edges default to the atlas's main method: RelP when it
has RelP edges, else the weight graph. Strength is mean_abs_weight (RelP: mean |weight| over the graphs
holding the edge; weight graph: |effective strength|).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from circuitlake import duck, lake, registry, search
from circuitlake.errors import UserError
from circuitlake.settings import Warehouse, warehouse


def label_of(alias: str = "") -> str:
    """A neuron's one label: the atlas label (its precedence), else the pass-1, else the pass-2 label."""
    at = f"{alias}." if alias else ""
    return f"coalesce({at}label, {at}output_label, {at}input_label)"


LABEL_OF = label_of()


class Atlas:
    """One atlas of a warehouse. Close it (or use `with`) to release the warehouse file: any open
    connection, read-only included, blocks `circuitlake build`."""

    def __init__(self, wh: Warehouse, name: str | None = None):
        self.warehouse = wh
        self.info = registry.resolve(wh, name)
        self.name = self.info.name
        self.con = duck.load(duck.connect(wh, read_only=True), "delta")
        found = {m for (m,) in self.con.execute("select distinct method from edges where atlas = ?", [self.name]).fetchall()}
        self.methods = sorted(found)  # the edge methods it has: relp, weight_graph
        self.method = "relp" if "relp" in found or not found else "weight_graph"

    def lake_partition(self, table: str, batch: str) -> str:
        """SQL for the rows of lake table `table` in this atlas's batch `batch`, `atlas` and `batch`
        columns included: a plain Parquet read of that partition's active files (lake.partition_files),
        not a Delta scan, which lists every file of the table per query (at 1B links ~50 ms against ~10).
        For a batch the build holds (e.g. `graph_index.batch`): committed, so no marker join is needed."""
        files = lake.partition_files(self.warehouse, table, self.name, batch)
        if not files:
            raise UserError(f"batch {batch} of {self.name} has left the lake since the last build: run `circuitlake build`")
        listed = ", ".join(duck.sql_string(f) for f in files)
        return f"(select {duck.sql_string(self.name)} as atlas, {duck.sql_string(batch)} as batch, * from read_parquet([{listed}]))"

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Atlas:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<circuitlake atlas {self.name!r}: {self.info.model_id}, {self.info.num_layers} x {self.info.neurons_per_layer}>"

    def sql(self, query: str, params: list[Any] | None = None) -> duckdb.DuckDBPyRelation:
        """Any read-only SQL over the published tables (neurons, edges, clusters, metadata, lake.*)."""
        return self.con.sql(query, params=params)

    def neurons(self) -> duckdb.DuckDBPyRelation:
        return self.sql("select * exclude (atlas) from neurons where atlas = $1", [self.name])

    def edges(self, method: str | None = None) -> duckdb.DuckDBPyRelation:
        return self.sql(
            "select * exclude (atlas, partials_seq) from edges where atlas = $1 and method = $2", [self.name, method or self.method]
        )

    def clusters(self) -> duckdb.DuckDBPyRelation:
        return self.sql("select * exclude (atlas) from clusters where atlas = $1", [self.name])

    def metadata(self) -> dict[str, str]:
        return dict(self.con.execute("select key, value from metadata where atlas = ?", [self.name]).fetchall())

    def neuron(self, layer: int | str, neuron: int | None = None) -> Neuron:
        """A neuron by (layer, neuron) or by a key in any spelling (L24/N5326, L24/5326, 24_5326, a feature_id)."""
        try:
            key = self.info.neuron_of(layer if neuron is None else f"L{layer}/N{neuron}")
        except ValueError as e:
            raise UserError(str(e)) from None
        return Neuron(self, *key)

    def top_circuits(self, n: int = 10, members: int = 5) -> duckdb.DuckDBPyRelation:
        """The `n` largest top-level modules with their layer span and `members` sample labels (the
        members with the most appearances; ties: lowest layer, then neuron)."""
        return self.sql(
            f"""
            with top as (
              select top_cluster, size, layer_min, layer_max, median_layer
              from clusters
              where atlas = $1 and level = 1 and is_module
              order by size desc, top_cluster
              limit $2
            ),
            samples as (
              -- a top-N per module (max_by keeps a heap of $3), not a sort of every member's label
              select top_cluster, max_by({LABEL_OF}, (appearance_count, -layer, -neuron), $3) as sample_labels
              from neurons
              where atlas = $1 and top_cluster in (select top_cluster from top) and {LABEL_OF} is not null
              group by top_cluster
            )
            select t.*, coalesce(s.sample_labels, []) as sample_labels
            from top as t
            left join samples as s on t.top_cluster = s.top_cluster
            order by t.size desc, t.top_cluster""",
            [self.name, n, members],
        )

    def circuit(self, top: int, sub: int | None = None, subsub: int | None = None, most_flow: int | None = None) -> duckdb.DuckDBPyRelation:
        """Members of a module (top, or top.sub, or top.sub.subsub), by layer; with `most_flow`, only its
        `most_flow` members of most Infomap flow, by flow (a top-N, not a sort of every member)."""
        order = "layer, neuron" if most_flow is None else f"infomap_flow desc nulls last, layer, neuron limit {int(most_flow)}"
        return self.sql(
            f"""select layer, neuron, label, output_label, input_label, cluster_path, appearance_count, infomap_flow
               from neurons
               where atlas = $1 and top_cluster = $2
                 and ($3 is null or sub_module = $3) and ($4 is null or subsub_module = $4)
               order by {order}""",
            [self.name, top, sub, subsub],
        )

    def edges_within(
        self, top: int, sub: int | None = None, subsub: int | None = None, method: str | None = None
    ) -> duckdb.DuckDBPyRelation:
        """Edges whose both ends are members of the module, strongest first."""
        return self.sql(
            """with members as (
                 select layer, neuron from neurons
                 where atlas = $1 and top_cluster = $2
                   and ($3 is null or sub_module = $3) and ($4 is null or subsub_module = $4)
               )
               select e.src_layer, e.src_neuron, e.tgt_layer, e.tgt_neuron, e.count, e.mean_weight, e.mean_abs_weight
               from edges as e
               semi join members as s on e.src_layer = s.layer and e.src_neuron = s.neuron
               semi join members as t on e.tgt_layer = t.layer and e.tgt_neuron = t.neuron
               where e.atlas = $1 and e.method = $5
               order by e.mean_abs_weight desc, e.src_layer, e.src_neuron, e.tgt_layer, e.tgt_neuron""",
            [self.name, top, sub, subsub, method or self.method],
        )

    def search(self, text: str, limit: int = 20, semantic: bool = False, **endpoint: Any) -> duckdb.DuckDBPyRelation:
        """Neurons ranked by BM25 over their label texts (stems, any query word: tantivy), or with
        `semantic=True` by the cosine similarity of their label embedding to the query's (faiss: exact, or IVF at scale),
        embedded by the model the atlas's vectors came from (`endpoint`: base_url, api_key_env, as for
        `circuitlake embed`)."""
        indexes = self.search_kinds()
        if not semantic:
            if "fts" not in indexes:
                raise UserError(f"{self.name} has no search index yet: run `circuitlake build`")
            folded = duck.scalar(self.con, f"select {search.FOLD.format('?')}", [text])
            hits = search.bm25(self._index_path("fts", search.fts_folder), folded, limit)
            return self.sql(search.hits_sql(), [[list(h) for h in hits], limit, self.name])
        if "semantic" not in indexes:
            raise UserError(
                f"{self.name} has no label embeddings yet: run `circuitlake embed --atlas {self.name}`, then `circuitlake build`"
            )
        model, dims = indexes["semantic"]
        vector = embed_query(text, model, dims, **endpoint)
        hits = search.nearest(self._index_path("semantic", search.vector_file), vector, limit)
        return self.sql(search.hits_sql(), [[list(h) for h in hits], limit, self.name])

    def _index_path(self, kind: str, located: Callable[[Warehouse, str, str], Path]) -> Path:
        """Where the atlas's `kind` index lies (`located` from its recorded fingerprint); an index recorded by
        an older circuitlake (DuckDB `fts`, brute-force vectors) has no file: the next build writes one."""
        fingerprint = duck.scalar(self.con, f"select fingerprint from {search.INDEXES} where atlas = ? and kind = ?", [self.name, kind])
        path = located(self.warehouse, self.name, fingerprint)
        if not path.exists():
            raise UserError(f"{self.name}'s search index is from an older circuitlake: run `circuitlake build` to rebuild it")
        return path

    def search_kinds(self) -> dict[str, tuple[str, int]]:
        """The search indexes the atlas has: kind (fts, semantic) -> (embedding model, dimensions)."""
        if not self._has_search():
            return {}
        found = self.con.execute(f"select kind, model, dimensions from {search.INDEXES} where atlas = ?", [self.name]).fetchall()
        return {kind: (model, dims) for kind, model, dims in found}

    def _has_search(self) -> bool:
        found = self.con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = 'indexes'", [search.SCHEMA]
        ).fetchone()
        return bool(found and found[0])


def embed_query(text: str, model: str, dimensions: int, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY") -> list[float]:
    """The query's vector from an OpenAI-compatible embeddings endpoint (the key from the environment)."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=os.environ.get(api_key_env) or "unused", max_retries=2, timeout=30)
    try:
        reply = client.embeddings.create(model=model, input=[text], dimensions=dimensions)
    except openai.APIError as e:
        raise UserError(f"embedding the query failed ({type(e).__name__}): check --base-url and {api_key_env}") from None
    return list(reply.data[0].embedding)


class Neuron:
    """One neuron of an atlas: its labels, edges, module and graphs, each a relation."""

    def __init__(self, atlas: Atlas, layer: int, neuron: int):
        self.atlas, self.layer, self.neuron = atlas, layer, neuron
        self._key = [atlas.name, layer, neuron]

    def __repr__(self) -> str:
        return f"<neuron L{self.layer}/N{self.neuron} of {self.atlas.name!r}>"

    def row(self) -> duckdb.DuckDBPyRelation:
        """Its `neurons` row (labels by the atlas's precedence, appearances, cluster); for a unit that is
        labeled but outside the universe, its labels by that precedence with `outside_universe` true."""
        return self.atlas.sql(
            """select * exclude (atlas), false as outside_universe from neurons where atlas = $1 and layer = $2 and neuron = $3
               union all by name
               select * exclude (atlas), $2 * $4 + $3 as feature_id, 0 as appearance_count, true as outside_universe
               from stg.neuron_labels as l
               where atlas = $1 and layer = $2 and neuron = $3
                 and not exists (select 1 from neurons as n where n.atlas = $1 and n.layer = $2 and n.neuron = $3)""",
            [*self._key, self.atlas.info.neurons_per_layer],
        )

    def labels(self) -> duckdb.DuckDBPyRelation:
        """Every current label of it, with its provenance (source, pass, file, batch, labeler)."""
        return self.atlas.sql(
            """select source, pass, label, short_label, description, type, interpretability, labeler_model, source_file, batch
               from labels_by_neuron
               where atlas = $1 and layer = $2 and neuron = $3
               order by source, pass, batch, record""",
            self._key,
        )

    # a direction's edges: the table sorted by this neuron's side, that side, the neighbour's side
    _DIRECTIONS = {"downstream": ("edges", "src", "tgt"), "upstream": ("edges_by_target", "tgt", "src")}

    def neighbours(self, k: int, wanted: list[tuple[str, str]]) -> duckdb.DuckDBPyRelation:
        """Its `k` strongest edges for each (direction, method) in `wanted` (direction 'downstream' or
        'upstream'), each row with its direction, method and the neighbour's label and cluster path: one
        query, whose single lookup of `neurons` serves every list (a card asks for four)."""
        lists = []
        for i, (direction, _method) in enumerate(wanted):
            table, side, other = self._DIRECTIONS[direction]
            lists.append(
                f"""(select ${5 + 2 * i} as direction, ${6 + 2 * i} as method,
                            {other}_layer as layer, {other}_neuron as neuron, count, mean_weight, mean_abs_weight
                     from {table}
                     where atlas = $1 and {side}_layer = $2 and {side}_neuron = $3 and method = ${6 + 2 * i}
                     order by mean_abs_weight desc, layer, neuron
                     limit $4)"""
            )
        return self.atlas.sql(
            f"""with strongest as ({" union all ".join(lists)})
                select s.*, {LABEL_OF} as label, n.cluster_path
                from strongest as s
                left join neurons as n on n.atlas = $1 and n.layer = s.layer and n.neuron = s.neuron
                order by s.direction, s.method, s.mean_abs_weight desc, s.layer, s.neuron""",
            [*self._key, k, *(value for pair in wanted for value in pair)],
        )

    def downstream(self, k: int = 10, method: str | None = None) -> duckdb.DuckDBPyRelation:
        """Its `k` strongest outgoing edges, with the targets' labels."""
        return self.neighbours(k, [("downstream", method or self.atlas.method)]).project("* exclude (direction, method)")

    def upstream(self, k: int = 10, method: str | None = None) -> duckdb.DuckDBPyRelation:
        """Its `k` strongest incoming edges, with the sources' labels (from edges_by_target, sorted by target)."""
        return self.neighbours(k, [("upstream", method or self.atlas.method)]).project("* exclude (direction, method)")

    def module(self, limit: int = 25) -> duckdb.DuckDBPyRelation:
        """The other members of its innermost module (its cluster path without the last component)."""
        return self.atlas.sql(
            f"""with me as (
                  select top_cluster, sub_module, subsub_module, hierarchy_depth,
                         substr(cluster_path, 1, length(cluster_path) - strpos(reverse(cluster_path), '.')) as module
                  from neurons where atlas = $1 and layer = $2 and neuron = $3 and hierarchy_depth >= 2
                )
                select n.layer, n.neuron, {LABEL_OF} as label, n.cluster_path, n.appearance_count
                from neurons as n
                join me on n.top_cluster = me.top_cluster
                where n.atlas = $1 and not (n.layer = $2 and n.neuron = $3)
                  -- members share the module's path: its integer parts compared first, the text only past them
                  and (me.hierarchy_depth < 3 or n.sub_module = me.sub_module)
                  and (me.hierarchy_depth < 4 or n.subsub_module = me.subsub_module)
                  and (me.hierarchy_depth < 5 or starts_with(n.cluster_path, me.module || '.'))
                order by n.appearance_count desc, n.layer, n.neuron
                limit $4""",
            [*self._key, limit],
        )

    def graphs(self, k: int = 5) -> duckdb.DuckDBPyRelation:
        """The `k` graphs where it has the highest |influence|, with their prompt."""
        top = self.atlas.sql(
            """select graph_key, max_abs_influence
               from neuron_graphs
               where atlas = $1 and layer = $2 and neuron = $3
               order by max_abs_influence desc, graph_key
               limit $4""",
            [*self._key, k],
        ).fetchall()
        # then their positions and prompts by the keys as literals: DuckDB reads a list column only for the
        # rows it keeps, and skips graph_index's row groups of other keys (a join or an IN subquery reads
        # them all: graph keys are hashes, so their min/max spans the whole table)
        listed = ", ".join(str(int(key)) for key, _ in top) or "null"
        return self.atlas.sql(
            f"""with top as (
                  select unnest($4::bigint[]) as graph_key, unnest($5::double[]) as max_abs_influence
                ),
                positions as (
                  select graph_key, positions
                  from neuron_graphs
                  where atlas = $1 and layer = $2 and neuron = $3 and graph_key in ({listed})
                )
                select t.graph_key, t.max_abs_influence, p.positions, g.prompt, g.slug, g.graph_id
                from top as t
                join positions as p on p.graph_key = t.graph_key
                join graph_index as g on g.graph_key = t.graph_key
                where g.atlas = $1 and g.graph_key in ({listed})
                order by t.max_abs_influence desc, t.graph_key""",
            [*self._key, [key for key, _ in top], [influence for _, influence in top]],
        )

    def projections(self) -> duckdb.DuckDBPyRelation:
        """Tokens its output promotes and suppresses (and, when known, activates on), strongest first."""
        return self.atlas.sql(
            """select kind, rank, coalesce(token, '#' || token_id) as token, weight
               from projections_by_neuron
               where atlas = $1 and layer = $2 and neuron = $3
               order by kind, rank""",
            self._key,
        )

    def card(self, k: int = 8) -> dict[str, Any]:
        """Everything above as plain data (what `circuitlake neuron --json` prints); `edges` holds the
        strongest edges both ways under every edge method the atlas has."""

        def rows(rel: duckdb.DuckDBPyRelation) -> list[dict[str, Any]]:
            return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]

        found = rows(self.row())
        edges: dict[str, dict[str, list[dict[str, Any]]]] = {m: {"downstream": [], "upstream": []} for m in self.atlas.methods}
        wanted = [(d, m) for m in self.atlas.methods for d in self._DIRECTIONS]  # none while the atlas has no edges
        for edge in rows(self.neighbours(k, wanted)) if wanted else []:
            edges[edge.pop("method")][edge.pop("direction")].append(edge)
        main = edges.get(self.atlas.method, {"downstream": [], "upstream": []})
        return {
            "atlas": self.atlas.name,
            "layer": self.layer,
            "neuron": self.neuron,
            "neuron_row": found[0] if found else None,
            "labels": rows(self.labels()),
            "downstream": main["downstream"],  # the atlas's main method (RelP when it has RelP edges)
            "upstream": main["upstream"],
            "edges": edges,  # every method it has, each both ways
            "module": rows(self.module(k)),
            "graphs": rows(self.graphs(min(k, 5))),
            "projections": rows(self.projections()),
        }


def open(path: str | os.PathLike | None = None, atlas: str | None = None) -> Atlas:  # noqa: A001 (the API's verb)
    """The atlas `atlas` of the warehouse at `path` (default: $CIRCUITLAKE_WAREHOUSE, else ./warehouse)."""
    return Atlas(warehouse(path), atlas)
