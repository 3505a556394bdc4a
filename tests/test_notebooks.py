"""The Colab notebooks in ``colab/``: each runs top to bottom, and each is stored clean.

Each notebook is executed by nbclient in a fresh kernel that runs this very interpreter, with
``PVJ_NOTEBOOK_TINY=1`` (the notebooks shrink every size) and a temporary working directory, so
the ``runs/`` and ``figures/`` they write land there. The kernel inherits this process's
environment, including conftest's four host CPU devices: the notebooks' multi-device paths (the
trainer's sharded batch, ``pmap``) run as they would on a TPU's cores. It does not inherit the
XLA:CPU workaround's flag, which conftest's early import of the package may have put into
``XLA_FLAGS``: on a fresh Colab runtime the notebook builds JAX's backend
(``jax.default_backend()``) before it imports the package, so the flag is never there in time,
and the kernel runs the same way.
"""

from __future__ import annotations

import ast
import os
import pathlib
import re
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
COLAB = ROOT / "colab"
NOTEBOOKS = sorted(COLAB.glob("*.ipynb"))
EXPECTED = ("latent_families.ipynb", "pareto_cvae_quickstart.ipynb", "pure_functions.ipynb",
            "sequence_vae.ipynb")
CELL_TIMEOUT_S = 300  # tiny mode needs seconds; a hung cell fails instead of stalling CI
INSTALL_GUARD = 'importlib.util.find_spec("pareto_vae_jax") is None'
# A Colab form field: the text box beside the cell sets SOURCE.
SOURCE_FIELD = re.compile(r'^SOURCE = "(.*)"  #@param \{type:"string"\}$', re.MULTILINE)
YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"  # pareto_vae_jax/_xla_workaround.py

by_name = pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)


def _code_cells(nb) -> list:
  return [c for c in nb.cells if c.cell_type == "code"]


def _first_code_cell(path: pathlib.Path) -> str:
  return _code_cells(nbformat.read(path, as_version=4))[0].source


def _install_guard(body: list[ast.stmt]) -> int:
  """Where in a cell's statements the ``if`` of the install guard is."""
  guard = ast.dump(ast.parse(INSTALL_GUARD, mode="eval").body)
  return next(i for i, node in enumerate(body)
              if isinstance(node, ast.If) and ast.dump(node.test) == guard)


def _install_block(cell: str) -> str:
  """The cell's statements up to the install guard's ``if``, that one included."""
  body = ast.parse(cell).body
  return "\n".join(ast.unparse(node) for node in body[:_install_guard(body) + 1])


def _repository_url() -> str:
  pyproject = (ROOT / "pyproject.toml").read_text()
  return re.search(r'^Repository = "(.+)"$', pyproject, re.MULTILINE).group(1)


def test_every_notebook_of_the_colab_folder_is_here():
  assert {p.name for p in NOTEBOOKS} >= set(EXPECTED)


@by_name
def test_notebook_is_stored_without_outputs_or_execution_counts(path):
  nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
  nbformat.validate(nb)
  assert nb.nbformat == 4
  assert nb.metadata.kernelspec.name == "python3"
  dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
           and (c.outputs or c.execution_count is not None or "execution" in c.metadata)]
  assert not dirty, (
      f"{path.name}: cells {dirty} hold outputs, execution counts or timings. Clear them "
      "before committing (colab/README.md shows how).")


@by_name
def test_first_code_cell_installs_the_package_only_when_it_is_missing(path):
  first = _first_code_cell(path)
  assert INSTALL_GUARD in first, f"{path.name}: the first code cell lacks {INSTALL_GUARD}"
  body = ast.parse(first).body
  installs = body[_install_guard(body)].body
  assert [ast.unparse(node) for node in installs] == ["pip_install(pip_requirement(SOURCE))"]
  field = SOURCE_FIELD.search(first)
  assert field, f"{path.name}: the first code cell lacks the form field {SOURCE_FIELD.pattern}"
  assert field.group(1) == f"git+{_repository_url()}"  # pyproject.toml's [project.urls]
  # pip may upgrade jax's dependencies; that is safe only before anything imports jax.
  assert "import jax" not in first


def test_every_notebook_installs_the_package_with_the_same_code():
  blocks = {path.name: _install_block(_first_code_cell(path)) for path in NOTEBOOKS}
  assert len(set(blocks.values())) == 1, f"the install code differs between {sorted(blocks)}"


@pytest.fixture(scope="module")
def pip_requirement():
  """The first code cell's ``pip_requirement``: the cell's definitions run, its ``if``s not."""
  module = ast.parse(_first_code_cell(NOTEBOOKS[0]))
  module.body = [node for node in module.body if not isinstance(node, ast.If)]
  namespace = {}
  exec(compile(module, "first code cell", "exec"), namespace)  # pylint: disable=exec-used
  return namespace["pip_requirement"]


def test_install_source_may_be_a_git_url_a_wheel_or_a_source_folder(pip_requirement, tmp_path):
  url = "https://github.com/someone/pareto-vae-jax"
  assert pip_requirement(url) == f"pareto-vae-jax @ git+{url}"
  assert pip_requirement(f"git+{url}@v0.1.0") == f"pareto-vae-jax @ git+{url}@v0.1.0"
  wheel = tmp_path / "pareto_vae_jax-0.1.0-py3-none-any.whl"
  wheel.write_bytes(b"")
  assert pip_requirement(f" {wheel} ") == str(wheel)  # a pasted path keeps no stray spaces
  assert pip_requirement(str(ROOT)) == str(ROOT)  # this checkout: a folder with pyproject.toml


def test_install_source_that_names_nothing_installable_says_what_to_put_in_the_field(
    pip_requirement, tmp_path):
  missing = tmp_path / "pareto_vae_jax-0.1.0-py3-none-any.whl"
  # Off Colab a Drive path is a plain path: nothing is mounted, and it does not exist.
  for source in (str(missing), "/content/drive/MyDrive/pareto_vae_jax-0.1.0-py3-none-any.whl"):
    with pytest.raises(FileNotFoundError, match=f"SOURCE {re.escape(source)} does not exist"):
      pip_requirement(source)
  with pytest.raises(ValueError, match="neither a wheel"):
    pip_requirement(str(tmp_path))  # a folder without pyproject.toml
  with pytest.raises(ValueError, match="SOURCE is empty") as error:
    pip_requirement("")
  for example in ("git+https://github.com/", "/content/pareto_vae_jax-0.1.0-py3-none-any.whl",
                  "/content/drive/MyDrive/", "colab/README.md"):
    assert example in str(error.value)


def test_readme_opens_every_notebook_in_colab_from_the_repository():
  readme = (ROOT / "README.md").read_text()
  github = _repository_url().removeprefix("https://github.com/")
  for path in NOTEBOOKS:
    link = f"https://colab.research.google.com/github/{github}/blob/main/colab/{path.name}"
    badge = "https://colab.research.google.com/assets/colab-badge.svg"
    assert f"]({badge})]({link})" in readme, f"README.md lacks an Open in Colab badge for {link}"


@pytest.fixture(scope="module")
def kernel_spec_manager(tmp_path_factory):
  """Knows one kernel, python3, whose command is sys.executable.

  The python3 kernelspec found on the machine may belong to another interpreter (a user-wide
  install, a system Jupyter); ipykernel's ``write_kernel_spec`` writes one for this one.
  """
  from ipykernel.kernelspec import write_kernel_spec
  from jupyter_client.kernelspec import KernelSpecManager
  kernels = tmp_path_factory.mktemp("kernels")
  write_kernel_spec(kernels / "python3")
  manager = KernelSpecManager(kernel_dirs=[str(kernels)])
  assert manager.get_kernel_spec("python3").argv[0] == sys.executable
  return manager


def _without_ynn_flag(xla_flags: str) -> str:
  return " ".join(flag for flag in xla_flags.split() if not flag.startswith(YNN_FLAG))


@by_name
def test_notebook_runs_top_to_bottom_in_tiny_mode(path, tmp_path, monkeypatch,
                                                  kernel_spec_manager):
  from jupyter_client.manager import KernelManager
  from nbclient import NotebookClient
  monkeypatch.setenv("PVJ_NOTEBOOK_TINY", "1")
  # As on a fresh Colab runtime: no YNN flag before the notebook builds its backend.
  xla_flags = _without_ynn_flag(os.environ.get("XLA_FLAGS", ""))
  monkeypatch.setenv("XLA_FLAGS", xla_flags)
  monkeypatch.delenv("PVJ_KEEP_YNN_FUSION", raising=False)
  nb = nbformat.read(path, as_version=4)
  # A first cell of the test's own reports the kernel's flags; it defines no name.
  nb.cells.insert(0, nbformat.v4.new_code_cell(
      'print(__import__("os").environ.get("XLA_FLAGS", ""))'))
  km = KernelManager(kernel_name="python3", kernel_spec_manager=kernel_spec_manager)
  client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, startup_timeout=120,
                          resources={"metadata": {"path": str(tmp_path)}})
  # Raises CellExecutionError, with the cell and its traceback, at the first failing cell.
  client.execute(cleanup_kc=True)
  reported = nb.cells[0].outputs[0].text.strip()
  assert reported == xla_flags and YNN_FLAG not in reported
  assert "--xla_force_host_platform_device_count=4" in reported  # conftest's, kept
  errors = [o for c in _code_cells(nb) for o in c.outputs if o.output_type == "error"]
  assert not errors
