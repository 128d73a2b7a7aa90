"""The shape of components/: an acyclic import graph, addons that know each other only by contract.

The graph is read from the source with `ast` (every import statement, at any depth), so an import
hidden inside a function still counts. Importing `a.b.c` also runs the packages `a` and `a.b`,
so those are edges too, except for the importer's own packages (Python is already running them).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from components.addons import discover
from components.contracts import ChaosMeshContract, Contracts, LoggingContract, TracingContract
from components.spec import load

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "components"
ADDONS = "components.addons"
# The addon package's machinery, which every addon builds on (flows: the NetworkPolicy vocabulary
# addons declare their traffic in; gitops: what the stack exports per addon); every other module there is an addon.
ADDON_MACHINERY = {"components.addons", "components.addons.base", "components.addons.registry", "components.addons.flows", "components.addons.gitops"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: str = PACKAGE) -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def is_package(name: str, known: dict[str, Path]) -> bool:
    return known.get(name, Path()).name == "__init__.py"


def imports(name: str, tree: ast.AST, known: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import statement of the module."""
    package = name if is_package(name, known) else name.rpartition(".")[0]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in child.names:
                    # `from package import module` imports the module; `from module import name` the module.
                    target = f"{base}.{alias.name}"
                    found.append((target if target in known else base, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def graph(package: str = PACKAGE) -> tuple[dict[str, set[str]], dict[str, list[tuple[str, int, bool]]]]:
    """The package's import graph (edges inside it) and every module's import statements naming it."""
    known = modules(package)
    edges: dict[str, set[str]] = {name: set() for name in known}
    statements: dict[str, list[tuple[str, int, bool]]] = {}
    for name, path in known.items():
        statements[name] = [s for s in imports(name, ast.parse(path.read_text(), str(path)), known) if s[0].split(".")[0] == package]
        own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)} | ({name} if is_package(name, known) else set())
        for target, _, _ in statements[name]:
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                step = ".".join(parts[:i])
                if step in known and step != name and (step == target or step not in own):
                    edges[name].add(step)
    return edges, statements


def find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path (first node repeated at the end), or [] when there is none."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def addon_modules(known: dict[str, Path]) -> set[str]:
    return {n for n in known if n.startswith(f"{ADDONS}.") and n not in ADDON_MACHINERY}


def test_the_import_graph_of_components_has_no_cycle():
    edges, _ = graph()
    assert len(edges) > 30, "the graph reads every module of components/"
    assert find_cycle(edges) == [], f"import cycle: {' -> '.join(find_cycle(edges))}"


def test_the_import_graph_of_the_engine_has_no_cycle():
    """Imports inside functions count: a lazy import is how the chart_values -> conformance ->
    reference -> runtime circle used to hide."""
    edges, _ = graph("engine")
    assert {"engine.runtime", "engine.stacks", "engine.chart_values", "engine.conformance", "engine.reference"} <= set(edges)
    assert "engine.chart_values" in edges["engine.stacks"], "the graph sees the stack runner's use of the values check"
    assert find_cycle(edges) == [], f"import cycle: {' -> '.join(find_cycle(edges))}"


def test_the_engine_graph_would_show_the_old_circle():
    edges, _ = graph("engine")
    edges["engine.reference"] = edges["engine.reference"] | {"engine.stacks"}
    assert find_cycle(edges)[:-1] and set(find_cycle(edges)) >= {"engine.stacks", "engine.reference"}


def declaration_imports_of(package: str) -> list[str]:
    """Every import statement of a module of components/spec naming `package` (at any depth)."""
    known = modules()
    return [
        f"{name}:{line} imports {target}"
        for name, path in sorted(known.items())
        if name == "components.spec" or name.startswith("components.spec.")
        for target, line, _ in imports(name, ast.parse(path.read_text(), str(path)), known)
        if target == package or target.startswith(f"{package}.")
    ]


def test_the_declarations_import_nothing_from_the_policy_pack():
    """The declarations are what the policy judges: the pack may read them, never the other way round."""
    assert declaration_imports_of("policy") == []
    assert declaration_imports_of("pydantic"), "the check sees the declarations' imports"


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_sees_package_imports_and_imports_in_functions():
    known = modules()
    tree = ast.parse("from components.spec import Service\ndef f():\n    from . import tracing\n")
    found = imports("components.addons.istio", tree, known | {"components.addons.tracing": Path("tracing.py")})
    assert found == [("components.spec", 1, False), ("components.addons.tracing", 3, True)]


def test_no_addon_module_imports_another():
    known = modules()
    addons = addon_modules(known)
    assert {"components.addons.istio", "components.addons.tracing", "components.addons.logging"} <= addons
    _, statements = graph()
    offending = [f"{name}:{line} imports {target}" for name in sorted(addons) for target, line, _ in statements[name] if target in addons and target != name]
    assert offending == []


def test_the_addon_machinery_imports_no_addon_module():
    """base, registry and flows read other addons through contracts (or the class registry), never by import."""
    known = modules()
    addons = addon_modules(known)
    assert "components.addons.flows" not in addons
    _, statements = graph()
    offending = [f"{name}:{line} imports {target}" for name in sorted(ADDON_MACHINERY) for target, line, _ in statements[name] if target in addons]
    assert offending == []


def test_workloads_import_no_addon_module():
    _, statements = graph()
    offending = [
        f"{name}:{line} imports {target}"
        for name, found in sorted(statements.items())
        if name.startswith("components.workloads")
        for target, line, _ in found
        if target == ADDONS or target.startswith(f"{ADDONS}.")
    ]
    assert offending == []


def test_no_module_of_components_imports_inside_a_function():
    """An import inside a function is how a cycle hides: every dependency is at the top of its module."""
    _, statements = graph()
    offending = [f"{name}:{line} imports {target}" for name, found in sorted(statements.items()) for target, line, nested in found if nested]
    assert offending == []


def test_contracts_are_one_per_type_and_absent_when_the_addon_is_off():
    contracts = Contracts()
    logs = LoggingContract(datasource_uid="loki", service_label="service_name")
    contracts.publish(logs)
    assert contracts.get(LoggingContract) is logs
    assert contracts.get(TracingContract) is None
    with pytest.raises(LookupError, match="TracingContract"):
        contracts.require(TracingContract)
    with pytest.raises(TypeError, match="two addons publish a LoggingContract"):
        contracts.publish(LoggingContract(datasource_uid="other", service_label="x"))


def test_enabled_addons_publish_their_contracts():
    addons = discover()
    for stack in ("dev", "staging", "prod"):
        decl = load(stack, ROOT)
        enabled = [name for name, a in decl.spec.addons.items() if a.enabled]
        published = {name: addons[name].contract(addons[name].validated(decl.spec.addons[name], decl.environment), decl) for name in enabled}
        assert all(c is None or type(c).__module__ == "components.contracts" for c in published.values())
        assert {"istio", "prometheus", "cert-manager"} <= {n for n, c in published.items() if c is not None}
        chaos = published.get("chaos-mesh")
        assert chaos is None or isinstance(chaos, ChaosMeshContract) and (chaos.experiments is None) == (stack == "prod")


def test_no_module_of_components_engine_or_policy_is_longer_than_300_lines():
    """Small rooms: a module past ~300 lines is doing more than one job (split it by concern)."""
    long = {
        str(p.relative_to(ROOT)): n
        for top in ("components", "engine", "policy")
        for p in sorted((ROOT / top).rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > 300
    }
    assert long == {}
