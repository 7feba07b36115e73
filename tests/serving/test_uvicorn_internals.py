"""What the server's protocol relies on inside uvicorn (listed in ``serving/uvicorn_contract.py``) is there
on the installed uvicorn, with the shapes the protocol expects: these tests fail when uvicorn
changes one of them, before a request does. The pin in pyproject is the range they passed on."""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import re
import textwrap
import tomllib
from pathlib import Path

import uvicorn
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from modelward.serving import protocol, uvicorn_contract

ROOT = Path(__file__).resolve().parents[2]


def _class_tree() -> ast.ClassDef:
    tree = ast.parse(textwrap.dedent(inspect.getsource(HttpToolsProtocol)))
    node = tree.body[0]
    assert isinstance(node, ast.ClassDef)
    return node


def _methods() -> dict[str, ast.FunctionDef]:
    return {f.name: f for f in _class_tree().body if isinstance(f, ast.FunctionDef)}


def fingerprint(method: ast.FunctionDef) -> str:
    """A method's code without its docstring and comments, hashed."""
    body = method.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        method = ast.FunctionDef(**{**method.__dict__, "body": body[1:]})
    return hashlib.sha256(ast.unparse(method).encode()).hexdigest()[:12]


def test_the_installed_uvicorn_is_the_range_pinned_and_tested() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [Requirement(d) for d in pyproject["project"]["dependencies"] if d.startswith("uvicorn")]
    assert [pin.specifier for pin in pins] == [SpecifierSet(uvicorn_contract.UVICORN_TESTED)]
    assert uvicorn.__version__ in SpecifierSet(uvicorn_contract.UVICORN_TESTED)


def test_every_attribute_the_protocol_uses_is_one_uvicorn_sets() -> None:
    assigned = {
        target.attr
        for node in ast.walk(_class_tree())
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == "self"
    }
    assert set(uvicorn_contract.UVICORN_ATTRIBUTES) - assigned == set()


def test_every_method_the_protocol_overrides_or_calls_has_the_expected_parameters() -> None:
    for name, parameters in uvicorn_contract.UVICORN_METHODS.items():
        assert name in vars(HttpToolsProtocol), f"HttpToolsProtocol.{name} is gone"
        found = tuple(inspect.signature(getattr(HttpToolsProtocol, name)).parameters)[1:]
        assert found == parameters, f"HttpToolsProtocol.{name}{found}, expected {parameters}"


def test_the_helpers_the_protocol_uses_have_what_it_reads() -> None:
    for where, names in uvicorn_contract.UVICORN_HELPERS.items():
        module, _, qualname = where.partition(":")
        helper = getattr(importlib.import_module(module), qualname)
        source = inspect.getsource(helper)
        for name in names:
            assert hasattr(helper, name) or re.search(rf"self\.{name}\b", source), f"{where}.{name} is gone"


def test_the_exchange_has_every_field_uvicorn_reads_from_a_connections_cycle() -> None:
    """A prediction answered in the protocol stands where uvicorn keeps its request cycle; every
    method of uvicorn's that can find it there reads only fields the stand-in has (its own
    on_body and on_message_complete never see it: the protocol's overrides answer first)."""
    read: set[str] = set()
    for name, method in _methods().items():
        if name in {"on_body", "on_message_complete", "_start_asgi_task"}:
            continue
        for node in ast.walk(method):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute | ast.Name)
                and ast.unparse(node.value) in {"self.cycle", "existing_cycle"}
            ):
                read.add(node.attr)
    exchange = protocol.Exchange
    provided = set(exchange.__slots__) | set(dir(exchange))
    assert read, "no cycle fields found: the scan needs updating"
    assert read - provided == set()


def test_the_methods_the_protocol_replaces_are_the_versions_it_was_written_against() -> None:
    methods = _methods()
    for name, known in uvicorn_contract.UVICORN_REPLACED.items():
        assert fingerprint(methods[name]) in known, (
            f"uvicorn's HttpToolsProtocol.{name} changed ({fingerprint(methods[name])}): review "
            "ModelwardProtocol's replacement of it, then add the fingerprint"
        )
