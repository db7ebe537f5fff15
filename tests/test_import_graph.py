"""No module of ``xai`` takes part in an import cycle: engines never import their plug-ins, leaves import no
engine (captum's ``_core``/``_utils`` split), the runner and its stages share only leaves. Every import counts:
inside functions (a lazy import only hides a cycle) and under ``if TYPE_CHECKING:`` (a type-only import that closes a
circle is the same circle in the design, and it would run the day the annotation is needed at run time)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "xai"


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the ``xai`` modules it imports, anywhere in the file. ``from a import b`` points at ``a.b`` when that
    is a module, else at ``a``; the implicit import of parent packages is not an edge (every submodule has it)."""
    files = {_module_name(path, package): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
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
    (root / "cams" / "plugin.py").write_text("import xai.cams.score\n")
    graph = import_graph(root)
    assert graph["xai.cams.library"] == {"xai.cams.base"} and graph["xai.cams.score"] == {"xai.cams.base"}
    assert cycles(graph) == [frozenset({"xai.cams.base", "xai.cams.library"})]
    # a type-only import that closes a circle is a circle
    (root / "cams" / "base.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from xai.cams.plugin import p\n"
    )
    (root / "cams" / "score.py").write_text("from xai.cams.base import f\n")
    assert cycles(import_graph(root)) == [frozenset({"xai.cams.base", "xai.cams.plugin", "xai.cams.score"})]


def test_the_cams_engine_and_its_plug_ins_share_only_a_leaf() -> None:
    graph = import_graph()
    assert not {"xai.explain.cams.base", "xai.explain.registry"} & graph["xai.explain.cams._core"]
    for plug_in in ("library", "ablation", "score"):
        assert "xai.explain.cams.base" not in graph[f"xai.explain.cams.{plug_in}"], plug_in
        assert "xai.explain.cams._core" in graph[f"xai.explain.cams.{plug_in}"], plug_in


def test_no_module_of_xai_takes_part_in_an_import_cycle() -> None:
    assert [sorted(cycle) for cycle in cycles(import_graph())] == []


def test_the_flow_is_one_way() -> None:
    """config -> plan -> stages -> artifacts -> pages: the domain packages import none of the glue (stages, plan,
    context, runner, command line), the glue's leaves none of the runner, and no page builder a stage."""
    graph = import_graph()
    glue = {"xai.pipeline", "xai.cli", "xai.plan", "xai.context", "xai.downloads"}
    glue |= {name for name in graph if name.startswith("xai.stages.")}
    for name, edges in graph.items():
        if name.startswith(("xai.explain", "xai.dissect", "xai.compare", "xai.concepts")):
            assert not edges & glue, (name, sorted(edges & glue))
        if name.startswith("xai.report"):
            assert not edges & ({name for name in glue if name.startswith("xai.stages")} | {"xai.pipeline"}), name
    assert not graph["xai.context"] & {"xai.pipeline", *(n for n in graph if n.startswith("xai.stages."))}
    assert graph["xai.stages"] == set()  # the stage registry is a leaf: the config reads it


def test_the_concepts_key_covers_every_module_its_code_imports() -> None:
    """Every ``xai`` module the concepts package imports, transitively (static imports, lazy ones included), is
    hashed into the concept pieces' key, or computes nothing: the package version, the cache's storage, the error
    base."""
    import xai.cache as cache_module
    from xai.stages import concepts as concepts_stage

    graph = import_graph()
    reached: set[str] = set()
    stack = [name for name in graph if name.startswith("xai.concepts")]
    while stack:
        name = stack.pop()
        if name not in reached:
            reached.add(name)
            stack += graph[name]
    hashed = set()
    for path in cache_module._source_files(PACKAGE, (*cache_module.SHARED_SOURCES, *concepts_stage.CODE)):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        hashed.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    assert sorted(reached - hashed - {"xai", "xai.cache", "xai.errors"}) == []
