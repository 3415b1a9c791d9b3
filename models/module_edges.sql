-- What a circuit page draws: per module and edge method, the strongest edges among its members of most Infomap flow.
MODEL (
  name main.module_edges,
  kind FULL,
  grain (atlas, cluster_path, method, src_layer, src_neuron, tgt_layer, tgt_neuron),
  columns (
    atlas text,
    cluster_path text,
    method text,
    strength_rank bigint,
    src_layer smallint,
    src_neuron bigint,
    tgt_layer smallint,
    tgt_neuron bigint,
    count bigint,
    mean_weight double,
    mean_abs_weight double,
    edges_total bigint
  ),
  column_descriptions (
    atlas = 'Atlas',
    cluster_path = 'Module (a clusters path of level 1 to 3 that is a module)',
    method = 'Edge method (edges.method)',
    strength_rank = 'Rank by mean |weight| among the module''s drawn edges, 1 = strongest',
    src_layer = 'Source unit layer',
    src_neuron = 'Source unit index',
    tgt_layer = 'Target unit layer',
    tgt_neuron = 'Target unit index',
    count = 'Observations of the edge (edges.count)',
    mean_weight = 'Mean signed weight (edges.mean_weight)',
    mean_abs_weight = 'Mean |weight| (edges.mean_abs_weight)',
    edges_total = 'Edges of this method between the module''s shown members, drawn or not'
  )
);

with modules as (
  -- the paths a circuit page takes: top, top.sub, top.sub.subsub
  select atlas, cluster_path
  from main.clusters
  where is_module and level <= 3
),

memberships as (
  -- a clustered unit belongs to the module of every proper prefix of its path
  select
    n.atlas,
    n.layer,
    n.neuron,
    n.infomap_flow,
    array_to_string(array_slice(string_split(n.cluster_path, '.'), 1, p.level), '.') as cluster_path
  from main.neurons as n
  cross join unnest(generate_series(1, least(n.hierarchy_depth - 1, 3))) as p(level)
  where n.cluster_path is not null
),

ranked_members as (
  select
    m.*,
    row_number() over (
      partition by m.atlas, m.cluster_path order by m.infomap_flow desc nulls last, m.layer, m.neuron
    ) as flow_rank
  from memberships as m
  semi join modules as d
    on m.atlas = d.atlas and m.cluster_path = d.cluster_path
),

shown as (
  -- a circuit page lists and draws a module's 400 members of most Infomap flow (reads.CIRCUIT_MEMBERS)
  select atlas, cluster_path, layer, neuron
  from ranked_members
  where flow_rank <= 400
),

inner_edges as (
  -- edges whose both ends are shown members of the same module
  select s.atlas, s.cluster_path, e.method, e.src_layer, e.src_neuron, e.tgt_layer, e.tgt_neuron, e.count, e.mean_weight, e.mean_abs_weight
  from main.edges as e
  join shown as s
    on e.atlas = s.atlas and e.src_layer = s.layer and e.src_neuron = s.neuron
  join shown as t
    on s.atlas = t.atlas and s.cluster_path = t.cluster_path and e.tgt_layer = t.layer and e.tgt_neuron = t.neuron
),

ranked_edges as (
  select
    *,
    count(*) over (partition by atlas, cluster_path, method) as edges_total,
    row_number() over (
      partition by atlas, cluster_path, method
      order by mean_abs_weight desc, src_layer, src_neuron, tgt_layer, tgt_neuron
    ) as strength_rank
  from inner_edges
)

-- a circuit page draws a module's 600 strongest (reads.CIRCUIT_EDGES); sorted by module for its lookup
select
  atlas,
  cluster_path,
  method,
  strength_rank,
  src_layer,
  src_neuron,
  tgt_layer,
  tgt_neuron,
  count,
  mean_weight,
  mean_abs_weight,
  edges_total
from ranked_edges
where strength_rank <= 600
order by atlas, cluster_path, method, strength_rank
