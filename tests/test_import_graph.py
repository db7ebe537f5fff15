"""No module of ``xai`` takes part in an import cycle: engines never import their plug-ins, leaves import no
engine (captum's ``_core``/``_utils`` split). Imports inside functions count (a lazy import only hides a cycle);
imports under ``if TYPE_CHECKING:`` do not (they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "xai"


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the ``xai`` modules it imports at run time. ``from a import b`` points at ``a.b`` when that is a
    module, else at ``a``; the implicit import of parent packages is not an edge (every submodule has it)."""
    files = {_module_name(path, package): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges |= {alias.name for alias in node.names if alias.name in files}
                continue
            base = node.module or ""
            if node.level:  # relative import
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                target = f"{base}.{alias.name}"
                edges.add(target if target in files else base)
        graph[name] = {edge for edge in edges if edge in files and edge != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for edge in sorted(graph[node]):
            if edge not in index:
                connect(edge)
                low[node] = min(low[node], low[edge])
            elif edge in on_stack:
                low[node] = min(low[node], index[edge])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_graph_sees_a_planted_cycle(tmp_path: Path) -> None:
    root = tmp_path / "xai"
    (root / "cams").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "cams" / "__init__.py").write_text("")
    (root / "cams" / "base.py").write_text("def f():\n    from xai.cams.library import g\n")
    (root / "cams" / "library.py").write_text("from . import base\n")
    (root / "cams" / "score.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from xai.cams.base import f\n"
    )
    graph = import_graph(root)
    assert graph["xai.cams.library"] == {"xai.cams.base"} and graph["xai.cams.score"] == set()
    assert cycles(graph) == [frozenset({"xai.cams.base", "xai.cams.library"})]


def test_the_cams_engine_and_its_plug_ins_share_only_a_leaf() -> None:
    graph = import_graph()
    assert not {"xai.explain.cams.base", "xai.explain.registry"} & graph["xai.explain.cams._core"]
    for plug_in in ("library", "ablation", "score"):
        assert "xai.explain.cams.base" not in graph[f"xai.explain.cams.{plug_in}"], plug_in
        assert "xai.explain.cams._core" in graph[f"xai.explain.cams.{plug_in}"], plug_in


def test_no_module_of_xai_takes_part_in_an_import_cycle() -> None:
    assert [sorted(cycle) for cycle in cycles(import_graph())] == []
