"""The package has one formatter: yapf, Google style with 2-space indentation (pyproject.toml).

Run ``yapf -i -r pareto_vae_jax`` to reformat; this test fails on any file it would change.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_package_is_formatted_with_its_formatter():
  proc = subprocess.run([sys.executable, "-m", "yapf", "--diff", "-r", "pareto_vae_jax"],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0 and not proc.stdout, (
      "Files not formatted as pyproject.toml's [tool.yapf] says; run `yapf -i -r "
      f"pareto_vae_jax`:\n{proc.stdout[:3000]}{proc.stderr[-2000:]}")


def test_the_check_fails_on_an_unformatted_file(tmp_path):
  bad = tmp_path / "bad.py"
  bad.write_text("x = [1,2,\n   3]\n")
  (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
  proc = subprocess.run([sys.executable, "-m", "yapf", "--diff", str(bad)], cwd=tmp_path,
                        capture_output=True, text=True, timeout=60)
  assert proc.returncode != 0 and "x = [1, 2, 3]" in proc.stdout
