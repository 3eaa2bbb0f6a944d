"""The project's modules form no import cycle — counting lazy imports inside functions and
`TYPE_CHECKING` imports too, since a cycle hidden behind either is still one — and the layers of
README's map hold: the shared core imports nothing of the project, `simulator/` never imports `bench/`
or `locustfiles/`, servers and clients never import the layers above them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("loadlab", "server", "clients", "locustfiles", "bench", "simulator")
# What each layer may import (besides itself): README "Map".
ALLOWED = {
    "loadlab": set(),
    "server": {"loadlab"},
    "clients": {"loadlab"},
    "locustfiles": {"loadlab", "clients"},
    "bench": {"loadlab", "clients", "server", "locustfiles", "simulator"},
    "simulator": {"loadlab"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module `path` imports, wherever the import statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            # `from a.b import c`: c may be a module or a name in a.b; the longest known prefix is the module.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    # A package's __init__ runs before any of its modules: importing a.b imports a too.
    for name, deps in graph.items():
        for dep in list(deps):
            parts = dep.split(".")
            deps.update(".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in graph)
        deps.discard(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_among_project_modules():
    # A package importing its own modules from __init__ (re-exports) is not a cycle of concern:
    # only cycles that pass through two different modules' code are.
    graph = import_graph()
    for name, deps in graph.items():
        deps -= {d for d in deps if name.startswith(d + ".")}  # a module needs its package's __init__
    assert cycles(graph) == []


def test_layers_import_only_downwards():
    wrong = []
    for name, deps in import_graph().items():
        layer = name.split(".")[0]
        for dep in deps:
            if dep.split(".")[0] not in ALLOWED[layer] | {layer}:
                wrong.append(f"{name} -> {dep}")
    assert wrong == []


# A room with one job: a newcomer reads a module in one sitting and a function on one screen.
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60


def test_no_module_over_400_lines_and_no_function_over_60():
    too_long = []
    for name, path in project_modules().items():
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert too_long == []
