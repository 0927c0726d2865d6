"""Each name of the contract is spelled once in the package: in ``names``, imported where used."""

import ast
import os

from mx_training_toolkit import names

PACKAGE = os.path.dirname(names.__file__)


def _constants():
    values = {}
    for key, value in vars(names).items():
        if key.isupper():
            for v in (value if isinstance(value, tuple) else (value,)):
                values[v] = key
    return values


def _docstrings(tree):
    nodes = (n for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)))
    return {id(n.body[0].value) for n in nodes if n.body and isinstance(n.body[0], ast.Expr)}


def test_the_names_are_distinct():
    plain = [v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)]
    assert len(plain) == len(set(plain))


def test_no_other_module_spells_a_contract_name():
    constants = _constants()
    found = []
    for file in sorted(os.listdir(PACKAGE)):
        if not file.endswith(".py") or file == "names.py":
            continue
        with open(os.path.join(PACKAGE, file), encoding="utf-8") as f:
            tree = ast.parse(f.read(), file)
        skip = _docstrings(tree)
        found += ["{}:{} {!r} (names.{})".format(file, node.lineno, node.value, constants[node.value])
                  for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and id(node) not in skip and node.value in constants]
    assert found == []
