"""Importing another registrar's location table (Kamailio 5.6 usrloc)."""

from infrastructure.location_import.importer import ImportReport, import_location
from infrastructure.location_import.source import (LocationSourceError, LocationTable,
                                                   read_location)

__all__ = ["ImportReport", "LocationSourceError", "LocationTable", "import_location",
           "read_location"]
