"""The application/reginfo+xml codec (RFC 3680 section 5.4, RFC 5628): safe parsing, strict
and Kamailio-compatible reading, building, and schema validation."""

from .builder import build_reginfo
from .lenient import parse_reginfo_lenient
from .safe_xml import parse_xml
from .schema import validate_reginfo
from .strict import parse_reginfo

__all__ = ["build_reginfo", "parse_reginfo", "parse_reginfo_lenient", "parse_xml",
           "validate_reginfo"]
