"""What each layer may import: the README's "How it is built", checked on every module.

Imports are read with `ast` (function-level and TYPE_CHECKING imports included), so a
wrong-way import fails here whether or not it runs. Layers, lowest first:
- domain: the RFC 3680 model; nothing of ours but domain, no IO, no clock, no logging.
- sip_gateway: the protocol edge; domain and itself only. Inside it, sip/ (the sans-IO
  core) imports no other part and no asyncio, socket or clock; reginfo/ only sip/;
  transport/ (sockets) neither server/ nor client/.
- projections: views of the event log; domain and itself only, no XML, no IO loop.
- infrastructure: the composition root; may import every layer. No layer imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("domain", "sip_gateway", "projections", "infrastructure")
CLOCK_AND_IO = {"asyncio", "socket", "time", "selectors", "threading", "subprocess"}

# module prefix -> imports it must not make (prefixes of dotted names); the most specific
# prefix of a module applies, together with every less specific one.
FORBIDDEN: dict[str, set[str]] = {
    "domain": {"sip_gateway", "projections", "infrastructure", "lxml", "psycopg", "logging",
               "sqlite3", *CLOCK_AND_IO},
    "sip_gateway": {"projections", "infrastructure", "psycopg", "sqlite3", "eventsourcing"},
    "sip_gateway.sip": {"sip_gateway.server", "sip_gateway.client", "sip_gateway.transport",
                        "sip_gateway.reginfo", "lxml", *CLOCK_AND_IO},
    "sip_gateway.reginfo": {"sip_gateway.server", "sip_gateway.client",
                            "sip_gateway.transport", *CLOCK_AND_IO},
    "sip_gateway.transport": {"sip_gateway.server", "sip_gateway.client"},
    "projections": {"sip_gateway", "infrastructure", "lxml", "asyncio", "socket"},
}


def imports_of(source: str, module: str) -> set[str]:
    """Every module name `source` imports (relative imports resolved against `module`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def violations(module: str, source: str) -> list[str]:
    rules = [(prefix, banned) for prefix, banned in FORBIDDEN.items()
             if module == prefix or module.startswith(prefix + ".")]
    problems = []
    for name in sorted(imports_of(source, module)):
        for prefix, banned in rules:
            hit = next((b for b in banned if name == b or name.startswith(b + ".")), None)
            if hit is not None:
                problems.append(f"{module} imports {name} ({prefix} must not import {hit})")
                break
    return problems


def product_modules() -> list[tuple[str, Path]]:
    modules = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules.append((".".join(parts), path))
    return modules


def test_every_product_module_keeps_to_its_layer():
    problems = [problem for module, path in product_modules()
                for problem in violations(module, path.read_text())]
    assert problems == []


@pytest.mark.parametrize("module, source", [
    # the wrong-way imports the structure issue listed, each one refused
    ("projections.publisher.composer", "from lxml import etree"),
    ("projections.publisher.composer", "from sip_gateway.reginfo import build_reginfo"),
    ("sip_gateway.transport.listeners", "from sip_gateway.server.handlers import Arrival"),
    ("sip_gateway.server.registrar",
     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
     "    from infrastructure.settings import Settings"),
    ("projections.usrloc.view", "from infrastructure.store import StoreUrl"),
    # and the rules of the layers
    ("domain.address_of_record", "import time"),
    ("domain.uri", "from sip_gateway.sip import SipUri"),
    ("sip_gateway.sip.message", "import asyncio"),
    ("sip_gateway.sip.client_transaction", "from time import monotonic"),
    ("sip_gateway.client.publication", "from infrastructure.commands import Register"),
])
def test_a_wrong_way_import_is_caught(module, source):
    assert violations(module, source)


def test_relative_imports_are_resolved():
    assert "sip_gateway.server.handlers" in imports_of(
        "from ..server import handlers", "sip_gateway.transport.listeners")
