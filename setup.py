"""The wheel ships the SQLMesh project (models, audits, macros, materializations, prompt templates, the
config and the SQLMesh unit tests) as circuitlake/project/, where an installed circuitlake finds it
outside any checkout (circuitlake/settings.py project_root). Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PROJECT = ["models", "audits", "macros", "materializations", "linter", "prompts", "sqlmesh_config.yaml", "config.py"]


class BuildPyWithProject(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "circuitlake" / "project"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in PROJECT:
            source = HERE / name
            if source.is_dir():
                shutil.copytree(source, target / name, dirs_exist_ok=True, ignore=ignore)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)
        (target / "tests").mkdir(exist_ok=True)
        for unit_test in (HERE / "tests").glob("test_*.yaml"):  # SQLMesh unit tests, named after their model
            shutil.copy2(unit_test, target / "tests" / unit_test.name)


setup(cmdclass={"build_py": BuildPyWithProject})
