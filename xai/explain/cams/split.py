"""A classifier cut at one module: the part that computes the module's output, and the part that depends on it.

AblationCAM replaces one module's output by C ablated copies and needs only what comes after it. Run as a hooked
forward pass, every chunk of copies also recomputes everything *before* the module on the one image (for
ResNet50's ``layer4[-1]``: the whole network but the head, ``ceil(C / n)`` times). :func:`split_at` traces the
model with ``torch.fx`` (the module kept as one call) and cuts the graph in two:

- ``prefix(image) -> (module output, *live)``: every node that does not depend on the module's output, run once;
  ``live`` are those of its values that later nodes read (a residual's identity, ViT's block input, ...);
- ``suffix(module output, *live) -> model output``: every node that depends on the module's output.

Run on the prefix's own module output the suffix gives the model's output (same operations, same order); run on
n rows it computes what the hooked forward pass computes, with the live values at batch 1 broadcast against
the rows exactly as there. A model ``torch.fx`` cannot trace (data-dependent control flow), or whose module
runs more or less than once, has no split: :func:`split_at` returns None and the caller keeps its hooked forward.

Splits are kept per model and module while the model's modules, parameters and buffers are the same objects:
tracing ResNet50 takes tens of milliseconds, more than its AblationCAM on a GPU.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import fx, nn

_SPLITS: weakref.WeakKeyDictionary[nn.Module, dict[str, tuple[tuple[int, ...], Split | None]]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class Split:
    prefix: fx.GraphModule
    """image -> (target module output, *live values)"""
    suffix: fx.GraphModule
    """(target module output, *live values) -> model output"""
    live: int
    """How many live values pass from the prefix to the suffix."""

    def run_suffix(self, output: torch.Tensor, live: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The model's output for the rows of ``output``; the live values are copied first, so an in-place
        operation of the suffix (ResNet's ``out += identity`` on a live tensor) cannot change the next chunk's."""
        return self.suffix(output, *(value.clone() if isinstance(value, torch.Tensor) else value for value in live))


class _KeepModule(fx.Tracer):
    """The standard tracer that also keeps the module at ``path`` as one ``call_module`` node."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return qualified_name == self.path or super().is_leaf_module(module, qualified_name)


def _identity(model: nn.Module) -> tuple[int, ...]:
    """What a cached split depends on: the very module, parameter and buffer objects of ``model``."""
    return tuple(id(item) for group in (model.modules(), model.parameters(), model.buffers()) for item in group)


def split_at(model: nn.Module, target: nn.Module) -> Split | None:
    """``model`` cut at ``target`` (see the module docs), or None where ``torch.fx`` gives no such cut."""
    path = next((name for name, module in model.named_modules() if module is target), None)
    if not path:  # not a submodule (or the model itself)
        return None
    splits = _SPLITS.setdefault(model, {})
    identity = _identity(model)
    found = splits.get(path)
    if found is not None and found[0] == identity:
        return found[1]
    split = _trace_split(model, path)
    splits[path] = (identity, split)
    return split


def _trace_split(model: nn.Module, path: str) -> Split | None:
    try:
        graph = _KeepModule(path).trace(model)
    except Exception:  # any tracing failure means: no split, the caller uses its hooked forward
        return None
    nodes = list(graph.nodes)
    targets = [node for node in nodes if node.op == "call_module" and node.target == path]
    if len(targets) != 1:
        return None
    target = targets[0]
    after = {target}  # the nodes that depend on the target's output (the target itself included)
    for node in nodes[nodes.index(target) + 1 :]:
        if any(source in after for source in node.all_input_nodes):
            after.add(node)
    output = next(node for node in nodes if node.op == "output")
    if output not in after:
        return None
    before = [node for node in nodes if node not in after and node.op != "output"]
    live = [node for node in before if any(user in after and user is not target for user in node.users)]
    return Split(
        _prefix_module(model, before, target, live), _suffix_module(model, nodes, after, target, live), len(live)
    )


def _prefix_module(model: nn.Module, before: list[fx.Node], target: fx.Node, live: list[fx.Node]) -> fx.GraphModule:
    graph = fx.Graph()
    copies: dict[fx.Node, fx.Node] = {}
    for node in before:
        copies[node] = graph.node_copy(node, lambda source: copies[source])
    copies[target] = graph.node_copy(target, lambda source: copies[source])
    graph.output((copies[target], *(copies[node] for node in live)))
    return fx.GraphModule(model, graph)


def _suffix_module(
    model: nn.Module, nodes: list[fx.Node], after: set[fx.Node], target: fx.Node, live: list[fx.Node]
) -> fx.GraphModule:
    graph = fx.Graph()
    copies: dict[fx.Node, fx.Node] = {target: graph.placeholder("target_output")}
    for index, node in enumerate(live):
        copies[node] = graph.placeholder(f"live_{index}")
    for node in nodes:
        if node in after and node is not target:
            copies[node] = graph.node_copy(node, lambda source: copies[source])
    return fx.GraphModule(model, graph)
