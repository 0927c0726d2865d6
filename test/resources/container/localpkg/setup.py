# A setup.py-only project: pip (23.0, Debian's) installs it without fetching a build backend, so
# the container needs no network. A pyproject.toml would make pip fetch setuptools from an index.
from setuptools import setup

setup(name="localpkg", version="1.0", packages=["localpkg_marker"])
