"""Named status bits of jaxmed results and their words (see ``jaxmed._src.status``).

>>> from jaxmed.status import MediationStatus, status_text
>>> status_text(MediationStatus.POOR_OVERLAP)
'poor_overlap'
"""

from jaxmed._src.status import STATUS_KINDS as STATUS_KINDS
from jaxmed._src.status import LongtermStatus as LongtermStatus
from jaxmed._src.status import MediationStatus as MediationStatus
from jaxmed._src.status import describe as describe
from jaxmed._src.status import status_text as status_text

__all__ = ["MediationStatus", "LongtermStatus", "describe", "status_text", "STATUS_KINDS"]
