"""Files to text: format detection, one extractor per format, and the pool of child processes they run in.

Only `detect_format` and the pool live in the server process; the parsing libraries (pypdfium2,
python-docx, selectolax, markdown-it-py) are imported by the worker children alone.
"""

from appliance.knowledge.extraction.errors import FAILURE_CODES, ExtractionFailed
from appliance.knowledge.extraction.formats import detect_format
from appliance.knowledge.extraction.limits import ExtractionLimits
from appliance.knowledge.extraction.pool import ExtractionPool

__all__ = ["FAILURE_CODES", "ExtractionFailed", "ExtractionLimits", "ExtractionPool", "detect_format"]
