"""Monte Carlo studies: run simulate + estimate over a grid of (N, T), summarise, plot.

>>> from jaxmed import study
>>> study.make_grid([100, 500], 25)
[(100, 25), (500, 25)]
"""

from jaxmed._src.study.catalog import default_estimator as default_estimator
from jaxmed._src.study.catalog import get_design as get_design
from jaxmed._src.study.catalog import list_designs as list_designs
from jaxmed._src.study.catalog import select_estimators as select_estimators
from jaxmed._src.study.catalog import truth_values as truth_values
from jaxmed._src.study.chunk_store import ChunkStore as ChunkStore
from jaxmed._src.study.chunk_store import StoreLockedError as StoreLockedError
from jaxmed._src.study.chunk_store import merge_stores as merge
from jaxmed._src.study.figures import plot_study as plot_study
from jaxmed._src.study.result import StudyResult as StudyResult
from jaxmed._src.study.runner import load as load
from jaxmed._src.study.runner import make_grid as make_grid
from jaxmed._src.study.runner import replication_key as replication_key
from jaxmed._src.study.runner import run as run
from jaxmed._src.study.summaries import SUMMARY_COLUMNS as SUMMARY_COLUMNS
from jaxmed._src.study.summaries import format_table as format_table
from jaxmed._src.study.summaries import summarize as summarize
from jaxmed._src.study.summaries import write_summary as write_summary

__all__ = [
    "run", "load", "make_grid", "replication_key", "StudyResult", "ChunkStore", "summarize",
    "write_summary", "format_table", "SUMMARY_COLUMNS", "plot_study", "truth_values",
    "default_estimator", "select_estimators", "get_design", "list_designs", "merge",
    "StoreLockedError",
]
