"""`circuitlake label`: two-pass LLM neuron labels from any OpenAI-compatible endpoint, landed in the lake.

settings   what a run is asked and what it did (LabelSettings, LabelReport, prices)
prompts    the templates and what a prompt cites from the lake and the built atlas
client     one neuron's calls: the client, the answer check, the retry policy
landing    label rows, the periodic commit, the resume rule
run        the synchronous passes (and the dry run)
batch_api  the same passes through the OpenAI Batch API, one job per layer
"""

from circuitlake.jobs.label.batch_api import label_with_batches
from circuitlake.jobs.label.run import dry_run, label
from circuitlake.jobs.label.settings import PRICES, LabelReport, LabelSettings

__all__ = ["PRICES", "LabelReport", "LabelSettings", "dry_run", "label", "label_with_batches"]
