"""hotpath/_native.pyi is hand-written: check it against the compiled module."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import hotpath
from hotpath import _native

STUB = ast.parse((Path(hotpath.__file__).parent / "_native.pyi").read_text())
CLASSES = {node.name: node for node in STUB.body if isinstance(node, ast.ClassDef)}
FUNCTIONS = {node.name: node for node in STUB.body if isinstance(node, ast.FunctionDef)}


def public(names: list[str]) -> set[str]:
    return {n for n in names if not n.startswith("_")}


def params(fn: ast.FunctionDef) -> list[str]:
    return [a.arg for a in fn.args.args + fn.args.kwonlyargs if a.arg not in ("self", "cls")]


def test_module_names_match() -> None:
    stubbed = (
        set(CLASSES)
        | set(FUNCTIONS)
        | {t.target.id for t in STUB.body if isinstance(t, ast.AnnAssign) and isinstance(t.target, ast.Name)}
    )
    assert stubbed == public(dir(_native)) | {"__version__"}
    assert set(hotpath.__all__) == stubbed


@pytest.mark.parametrize("name", ["Assembler", "Blender", "IvfIndex", "Reranker"])
def test_class_signatures_match(name: str) -> None:
    runtime = getattr(_native, name)
    defs = {f.name: f for f in CLASSES[name].body if isinstance(f, ast.FunctionDef)}
    assert public(list(defs)) == public(dir(runtime))
    assert params(defs["__new__"]) == list(inspect.signature(runtime).parameters)
    for attr, fn in defs.items():
        member = getattr(runtime, attr)
        if attr.startswith("_"):
            continue
        if isinstance(member, property) or inspect.isdatadescriptor(member):
            assert any(isinstance(d, ast.Name) and d.id == "property" for d in fn.decorator_list)
        else:
            runtime_params = [p for p in inspect.signature(member).parameters if p != "self"]
            assert params(fn) == runtime_params, attr


def test_exception_bases_match() -> None:
    for name in (
        "HotpathError",
        "ShapeError",
        "UnknownItemError",
        "LayoutError",
        "AnnIndexError",
        "ItemRowsError",
        "IvfIndexError",
    ):
        bases = [b.id for b in CLASSES[name].bases if isinstance(b, ast.Name)]
        assert [b.__name__ for b in getattr(_native, name).__bases__] == bases


def test_function_signatures_match() -> None:
    for name, fn in FUNCTIONS.items():
        assert params(fn) == list(inspect.signature(getattr(_native, name)).parameters), name


def test_ann_index_signatures_match() -> None:
    runtime = _native.AnnIndex
    fns = [f for f in CLASSES["AnnIndex"].body if isinstance(f, ast.FunctionDef)]
    assert public([f.name for f in fns]) == public(dir(runtime))
    for fn in fns:
        member = inspect.getattr_static(runtime, fn.name)
        if fn.name.startswith("_"):
            continue
        decorators = {ast.unparse(d) for f in fns if f.name == fn.name for d in f.decorator_list}
        if inspect.isdatadescriptor(member):
            assert "property" in decorators, fn.name
        else:
            assert "staticmethod" in decorators or not isinstance(member, staticmethod), fn.name
            runtime_params = [p for p in inspect.signature(getattr(runtime, fn.name)).parameters if p != "self"]
            assert params(fn) == runtime_params, fn.name
