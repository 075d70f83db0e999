"""The 43 Kamailio 5.6.3 notify cases: files, lab times, and the location tables it dumped."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

CASES_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "kamailio-5.6" / "notify-cases"
TABLES = CASES_DIR / "location-table"
# Names Kamailio glued onto contact URIs as parameters (unknown-param, cases 04 and 41).
GLUED_PARAMS = {"+sip.instance", "reg-id", "audio", "+g.3gpp.icsi-ref", "expires"}


@dataclass(frozen=True)
class Case:
    id: str
    name: str
    pre: str
    rc: int  # -1 where Kamailio crashed: we refuse the document instead
    crashed: bool
    sent_at: float  # when the lab sent the NOTIFY (its clock)

    @property
    def path(self) -> Path:
        return CASES_DIR / f"{self.id}-{self.name}.sip"

    @property
    def stem(self) -> str:
        return f"{self.id}-{self.name}"


@dataclass(frozen=True)
class Row:
    aor: str  # record key as usrloc with use_domain=0 sees it: the user part
    contact: str
    callid: str
    cseq: int
    remaining: float


def lab_times() -> dict[str, float]:
    times: dict[str, float] = {}
    with open(CASES_DIR / "capture-index.tsv", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["start_line"].startswith(("NOTIFY", "REGISTER")):
                times.setdefault(row["call_id"], float(row["time"]))
    return times


def cases() -> list[Case]:
    times = lab_times()
    with open(CASES_DIR / "outcomes.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [
        Case(r["id"], r["name"], r["pre"], -1 if r["crashed"] == "yes" else int(r["rc"]),
             r["crashed"] == "yes", times[f"notify-case-{r['id']}@lab"])
        for r in rows
    ]


def carol_register_time() -> float:
    return lab_times()["lab-carol-dev1@127.0.0.1"]


def aor_key(text: str) -> str:
    """usrloc use_domain=0 key of an AoR string as Kamailio or we print it."""
    text = re.sub(r"^(sips?|tel):", "", text).split(";")[0]
    return text.split("@")[0]


def strip_glued(contact: str) -> str:
    base, *params = contact.split(";")
    kept = [p for p in params if p.split("=")[0] not in GLUED_PARAMS]
    return ";".join([base, *kept])


def kamailio_rows(stem: str, which: str = "after") -> list[Row]:
    """Live bindings of a `kamcmd ul.dump` (rows whose expiry has passed count as gone)."""
    path = TABLES / f"{stem}.{which}.txt"
    rows, aor, contact = [], None, {}
    for line in path.read_text().splitlines():
        key, _, value = line.strip().partition(": ")
        if key == "AoR":
            aor = value
        elif key in ("Address", "Expires", "Call-ID", "CSeq"):
            contact[key] = value
            if key == "CSeq":
                if contact["Expires"] not in ("expired", "0", "deleted"):
                    rows.append(Row(aor_key(aor), strip_glued(contact["Address"]),
                                    contact["Call-ID"], int(contact["CSeq"]),
                                    float(contact["Expires"])))
                contact = {}
    return rows


def without_stale_duplicates(rows: list[Row]) -> list[Row]:
    """Drop the duplicate Kamailio 5.6 stores for a stale CSeq (case 29, defect P11)."""
    best: dict[tuple[str, str, str], Row] = {}
    for row in rows:
        key = (row.aor, row.contact, row.callid)
        if key not in best or row.cseq > best[key].cseq:
            best[key] = row
    return list(best.values())
