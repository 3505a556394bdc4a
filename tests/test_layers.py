"""The package's import structure: no cycle, and no module importing one above it.

Every ``import``/``from ... import`` of a ``pareto_vae_jax`` module is read from the source
with ``ast``, including imports inside functions (which hide a cycle from Python, not from a
reader). The layers, bottom up: the leaves and the distributions; the networks and the
objectives; ``vae`` (what a VAE computes on a batch); the outputs of a run; the trainer; the
entry points built on it.
"""

from __future__ import annotations

import ast
import pathlib

import pareto_vae_jax

PACKAGE = pathlib.Path(pareto_vae_jax.__file__).parent
LAYERS = [
    {"_xla_workaround", "config", "progress", "data", "sequences", "metrics", "multihost", "plots",
     "distributions", "configs"},
    {"models", "objectives", "recurrent", "gamma_power"},
    {"vae"},
    {"reporting", "checkpoint", "chunks", "checks", "interrupts", "sequence_eval"},
    {"train"},
    {"trained", "evaluate", "claims", "main", "holes"},
]


def _module(path: pathlib.Path) -> str:
  parts = path.relative_to(PACKAGE).with_suffix("").parts
  return ".".join(p for p in parts if p != "__init__") or "__init__"


def _imports(path: pathlib.Path) -> set[str]:
  """The package modules ``path`` imports (``pareto_vae_jax.x.y`` as ``x.y``)."""
  modules = {_module(p) for p in PACKAGE.rglob("*.py")}
  inside = lambda name: name[len("pareto_vae_jax."):] if name.startswith(
      "pareto_vae_jax.") else None
  out = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      out |= {inside(a.name) for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      for alias in node.names:
        # "from pareto_vae_jax import vae" names the module vae; "from pareto_vae_jax.vae
        # import jit" an attribute of the module vae.
        full = inside(f"{node.module}.{alias.name}")
        out.add(full if full in modules else inside(node.module))
  return out & modules


def _graph() -> dict[str, set[str]]:
  return {_module(p): _imports(p) - {_module(p)} for p in PACKAGE.rglob("*.py")}


def _layer(module: str) -> int:
  top = module.split(".")[0]
  for i, layer in enumerate(LAYERS):
    if top in layer:
      return i
  raise AssertionError(f"{module} is in no layer of tests/test_layers.py: add it")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  found, state = [], {}

  def visit(node, path):
    state[node] = "open"
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == "open":
        found.append(path[path.index(nxt):] + [nxt])
      elif nxt not in state:
        visit(nxt, path + [nxt])
    state[node] = "done"

  for node in sorted(graph):
    if node not in state:
      visit(node, [node])
  return found


def test_no_import_cycle_inside_the_package():
  graph = {m: deps for m, deps in _graph().items() if m != "__init__"}
  assert _cycles(graph) == []


def test_the_cycle_finder_finds_one():
  assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_module_imports_one_above_it():
  upward = [f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
            for m, deps in sorted(_graph().items()) if m != "__init__"
            for d in sorted(deps) if _layer(d) > _layer(m)]
  assert upward == []


def test_the_import_reader_sees_imports_inside_functions(tmp_path):
  source = tmp_path / "x.py"
  source.write_text("def f():\n  from pareto_vae_jax import train\n")
  assert "train" in _imports(source)
