-- Every atlas's metadata has every provenance key the report and users rely on.
AUDIT (name metadata_has_keys);

with required as (
  select key from (
    values ('model_id'), ('num_layers'), ('neurons_per_layer'), ('universe'), ('relp_min_count'),
           ('graphs'), ('edges'), ('neurons'), ('build_time'), ('circuitlake_version')
  ) as r(key)
),

atlases as (
  select distinct atlas from @this_model
)

select a.atlas, r.key
from atlases as a
cross join required as r
where not exists (
  select 1 from @this_model as m where m.atlas = a.atlas and m.key = r.key
)
