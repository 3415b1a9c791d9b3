-- Per-atlas label precedence, as data: which (pass, field[, source]) fills which neurons column, best rank first.
MODEL (
  name lake.label_precedence,
  kind VIEW,
  column_descriptions (
    atlas = 'Atlas',
    column_name = 'neurons column: label | output_label | input_label | description',
    rank = '1 wins over 2, ...',
    pass = 'Label pass the value comes from',
    field = 'label | short_label | description',
    source = 'Only this source (null: any source)'
  )
);

select atlas, column_name, rank, pass, field, source
from @lake_scan(label_precedence)
