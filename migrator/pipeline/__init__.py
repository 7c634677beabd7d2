"""The copy pipeline: any store to any stores, each message fetched once and fanned out."""

from migrator.pipeline.filters import MessageFilter
from migrator.pipeline.parallel import DEFAULT_CONNECTIONS
from migrator.pipeline.progress import Progress
from migrator.pipeline.run import CopyOptions, run_copy
from migrator.pipeline.summary import Failure, Summary

__all__ = ["DEFAULT_CONNECTIONS", "CopyOptions", "Failure", "MessageFilter", "Progress", "Summary", "run_copy"]
