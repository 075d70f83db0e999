"""TIME arguments: ISO-8601 (`2026-11-26T12:00:00Z`, `2026-11-26T13:00:00+01:00`) or Unix
seconds. A time without an offset is read in the local time zone (`TZ`), as `date` reads
it: an operator typing the wall-clock time of an incident means that time."""

from datetime import datetime, timezone

from domain import PuaReginfoError


class TimeFormatError(PuaReginfoError):
    pass


def parse_time(text: str) -> datetime:
    text = text.strip()
    try:
        return datetime.fromtimestamp(float(text), timezone.utc)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise TimeFormatError(
            f"bad time {text!r}: use ISO-8601 (2026-11-26T12:00:00Z) or Unix seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # the local time zone, DST included
    return moment.astimezone(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
