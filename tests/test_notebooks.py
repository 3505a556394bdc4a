"""The Colab notebooks in ``colab/``: each runs top to bottom, and each is stored clean.

Each notebook is executed by nbclient in a fresh kernel that runs this very interpreter, with
``PVJ_NOTEBOOK_TINY=1`` (the notebooks shrink every size) and a temporary working directory, so
the ``runs/`` and ``figures/`` they write land there. The kernel inherits this process's
environment, including conftest's four host CPU devices: the notebooks' multi-device paths (the
trainer's sharded batch, ``pmap``) run as they would on a TPU's cores.
"""

from __future__ import annotations

import pathlib
import sys

import nbformat
import pytest

COLAB = pathlib.Path(__file__).resolve().parent.parent / "colab"
NOTEBOOKS = sorted(COLAB.glob("*.ipynb"))
EXPECTED = ("latent_families.ipynb", "pareto_cvae_quickstart.ipynb", "pure_functions.ipynb")
CELL_TIMEOUT_S = 300  # tiny mode needs seconds; a hung cell fails instead of stalling CI
INSTALL_GUARD = 'importlib.util.find_spec("pareto_vae_jax")'

by_name = pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)


def _code_cells(nb) -> list:
  return [c for c in nb.cells if c.cell_type == "code"]


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
  first = _code_cells(nbformat.read(path, as_version=4))[0].source
  assert INSTALL_GUARD in first, f"{path.name}: the first code cell lacks {INSTALL_GUARD}"
  assert 'REPO_URL = "https://' in first and "git+{REPO_URL}" in first
  # pip may upgrade jax's dependencies; that is safe only before anything imports jax.
  assert "import jax" not in first


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


@by_name
def test_notebook_runs_top_to_bottom_in_tiny_mode(path, tmp_path, monkeypatch,
                                                  kernel_spec_manager):
  from jupyter_client.manager import KernelManager
  from nbclient import NotebookClient
  monkeypatch.setenv("PVJ_NOTEBOOK_TINY", "1")
  nb = nbformat.read(path, as_version=4)
  km = KernelManager(kernel_name="python3", kernel_spec_manager=kernel_spec_manager)
  client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, startup_timeout=120,
                          resources={"metadata": {"path": str(tmp_path)}})
  # Raises CellExecutionError, with the cell and its traceback, at the first failing cell.
  client.execute(cleanup_kc=True)
  errors = [o for c in _code_cells(nb) for o in c.outputs if o.output_type == "error"]
  assert not errors
