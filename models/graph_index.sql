-- One row per attribution graph: its lake batch, id, slug and prompt, sorted by graph key within each pass.
MODEL (
  name main.graph_index,
  kind CUSTOM (
    -- each restatement inserts the graphs of batches not indexed yet, 64 batches a pass, each pass
    -- sorted by graph key: a graph is found in one narrow range of every pass (pages look graphs up)
    materialization 'append_batches',
    materialization_properties (
      order_by = (atlas, graph_key)
    )
  ),
  tags (reads_lake),
  grain (atlas, graph_key),
  columns (
    atlas text,
    batch text,
    seq bigint,
    graph_key bigint,
    graph_id text,
    slug text,
    prompt text
  ),
  column_descriptions (
    atlas = 'Atlas',
    batch = 'Ingest batch of the graph: the lake partition holding its nodes and links',
    seq = 'Append pass that wrote the row (ascending)',
    graph_key = 'Graph (lake.graphs.graph_key)',
    graph_id = 'sha256 of the graph file''s decompressed bytes',
    slug = 'Graph slug as its producer named it',
    prompt = 'Prompt the graph was traced on'
  )
);

with previous as (
  -- this table's own rows (alias and qualify: sqlglot binds unqualified columns to the outer table otherwise)
  select gi.atlas, gi.batch, gi.seq
  from main.graph_index as gi
),

pass as (
  @next_pass()
),

new_batches as (
  -- graph batches this table does not hold yet, 64 a pass
  @new_batches('graphs')
)

select
  g.atlas,
  g.batch,
  (select seq from pass) as seq,
  g.graph_key,
  g.graph_id,
  g.slug,
  g.prompt
from lake.graphs as g
semi join new_batches as b
  on g.atlas = b.atlas and g.batch = b.batch
