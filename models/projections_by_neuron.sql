-- The tokens each unit's output promotes and suppresses (and activates on), sorted by unit: what a neuron card lists.
MODEL (
  name main.projections_by_neuron,
  kind FULL,
  tags (reads_lake),
  grain (atlas, layer, neuron, kind, rank),
  columns (
    atlas text,
    layer smallint,
    neuron bigint,
    kind text,
    rank int,
    token_id bigint,
    token text,
    weight double,
    source text,
    batch text
  ),
  column_descriptions (
    atlas = 'Atlas',
    layer = 'Unit layer',
    neuron = 'Unit index inside the layer',
    kind = 'promotes | suppresses | activates',
    rank = 'Rank inside its kind, 1 = strongest',
    token_id = 'Token id in the model vocabulary',
    token = 'Token text, when the wiring source decoded it',
    weight = '(W_U d_s)[token] for promotes / suppresses',
    source = 'Wiring source the projection came from',
    batch = 'Ingest batch that landed it'
  )
);

with projections as (
  -- lake.projections holds the current wiring source's newest batch per layer
  select * from lake.projections
),

renamed as (
  select
    atlas,
    cast(layer as smallint) as layer,
    cast(neuron as bigint) as neuron,
    kind,
    rank,
    token_id,
    token,
    weight,
    source,
    batch
  from projections
)

-- sorted by unit: one unit's projections sit in one narrow row-group range (DuckDB zone maps)
select *
from renamed
order by atlas, layer, neuron, kind, rank
