"""Puts a benchmark's table into docs/benchmarks.md between its own markers."""

import os

DOCS = os.path.join(os.path.dirname(__file__), "..", "docs", "benchmarks.md")


def markers(name: str) -> tuple[str, str]:
  return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write(name: str, text: str) -> None:
  """Replaces the block of ``name`` (markers included in ``text``), or appends it."""
  start, end = markers(name)
  with open(DOCS) as f:
    docs = f.read()
  if start in docs:
    docs = docs[:docs.index(start)] + text + docs[docs.index(end) + len(end):]
  else:
    docs += "\n" + text + "\n"
  with open(DOCS, "w") as f:
    f.write(docs)
