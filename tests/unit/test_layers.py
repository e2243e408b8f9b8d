"""The layer rules of the README's architecture section, checked over every module of `app/`
(imports anywhere in a module count, those inside functions too):

- pages and components import neither models, the database, Stripe nor the ORM: they reach data
  through `app.state` (the actor and the transaction) and `app.services` (views);
- shared states import no models and no Stripe;
- services never import Reflex, states, pages, components or the HTTP API;
- the Stripe gateway (`app.payments`) only talks to Stripe: it imports no service, model or database;
- models import nothing above them;
- no two modules of `app/` import each other, directly or around a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"

# (layer prefix, forbidden import prefixes)
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("app.pages", ("app.models", "app.db", "app.payments", "stripe", "sqlmodel", "sqlalchemy")),
    ("app.components", ("app.models", "app.db", "app.payments", "stripe", "sqlmodel", "sqlalchemy")),
    ("app.state", ("app.models", "app.payments", "stripe", "sqlalchemy")),
    ("app.services", ("reflex", "app.state", "app.pages", "app.components", "app.api")),
    ("app.payments", ("app.services", "app.models", "app.db", "sqlmodel", "reflex", "app.state", "app.pages")),
    ("app.models", ("app.services", "app.payments", "app.state", "app.pages", "app.api", "reflex")),
]

# Known breaches being worked off; the list may only shrink.
KNOWN: set[tuple[str, str]] = set()

# Known circles being worked off; the list may only shrink.
KNOWN_CIRCLES: set[frozenset[str]] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(APP.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module `name` imports (`from x import y` counts y when y is a module)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_each_layer_imports_only_what_it_may(graph):
    breaches = {
        (module, imported)
        for module, imports in graph.items()
        for layer, forbidden in RULES
        if _under(module, layer)
        for imported in imports
        if any(_under(imported, prefix) for prefix in forbidden)
    }
    assert len(graph) > 80, "the scan found too few modules to be looking at app/"
    new = sorted(breaches - KNOWN)
    assert not new, "Layer rules broken:\n" + "\n".join(f"{m} imports {i}" for m, i in new)
    gone = sorted(KNOWN - breaches)
    assert not gone, "Take these mended breaches off KNOWN:\n" + "\n".join(f"{m} imports {i}" for m, i in gone)


def test_no_import_circles(graph):
    internal = {m: {i for i in imports if i in graph and i != m} for m, imports in graph.items()}
    # A package's __init__ importing its own submodules is how a package is put together.
    for module, imports in internal.items():
        internal[module] = {i for i in imports if not _under(i, module)}
    circles, state, stack = [], {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for imported in sorted(internal[module]):
            if state.get(imported) == "open":
                circles.append(stack[stack.index(imported) :] + [imported])
            elif imported not in state:
                visit(imported)
        stack.pop()
        state[module] = "done"

    for module in sorted(internal):
        if module not in state:
            visit(module)
    circles = [c for c in circles if frozenset(c) not in KNOWN_CIRCLES]
    assert not circles, "Import circles:\n" + "\n".join(" -> ".join(c) for c in circles)
