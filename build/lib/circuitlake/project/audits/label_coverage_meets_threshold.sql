-- Label coverage (share of the atlas universe with a non-empty label) >= the atlas's min_label_coverage.
-- A threshold query: one row per failing atlas, not per unlabeled neuron. Non-blocking inside `plan`
-- (an atlas whose labels arrive later still builds); `circuitlake audit` exits non-zero on failure.
-- Atlases without a threshold are reported, not audited.
AUDIT (name label_coverage_meets_threshold, standalone true, blocking false);

with coverage as (
  select
    atlas,
    cast(count(label) as double) / count(*) as coverage
  from main.neurons
  group by atlas
)

select c.atlas, c.coverage, a.min_label_coverage
from coverage as c
join lake.atlases as a
  on c.atlas = a.atlas
where a.min_label_coverage is not null
  and c.coverage < a.min_label_coverage
