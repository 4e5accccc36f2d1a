"""The build's one mapping, which pyproject.toml cannot say beside package discovery: the shipped
checkpoints live in the source tree's top-level checkpoints/ (the design card's layout) and travel
in the package as ntmviz/checkpoints/ (package data). So a wheel carries them inside the package,
an sdist carries the top-level folder (and this file, so a wheel built from it maps it again),
and ntmviz/shipped.py finds them in either place. Everything else is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

setup(
    # every package under ntmviz/ (as pyproject.toml's discovery used to find them), plus the
    # checkpoints as a data-only package whose files come from checkpoints/
    packages=sorted({*find_namespace_packages(include=["ntmviz*"], exclude=["*__pycache__*"]),
                     "ntmviz.checkpoints"}),
    package_dir={"ntmviz.checkpoints": "checkpoints"},
)
