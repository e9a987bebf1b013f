"""Write the committed ``.pyi`` stubs of the public modules from their runtime objects.

    python -m adapool_core._stubgen           # rewrite the stubs
    python -m adapool_core._stubgen --check   # exit 1 if a committed stub is stale

The public functions and classes are generated at import time
(``globals().update(...)``), so type checkers and editors cannot see them in
the source.  This introspects every name of each module's ``__all__`` (the
one table: their signatures and annotations) and writes a stub beside the
module.  Annotations resolve to imports of the modules that define their
names; ``return_mask: bool`` (or ``return_grad_w: bool``) with a return of
``A | tuple[A, A]`` becomes overloads, so ``return_mask=True`` types as a tuple.
"""
from __future__ import annotations

import ast
import builtins
import difflib
import importlib
import inspect
import sys
import typing
from pathlib import Path

MODULES = ("adapool_core", "adapool_core.torch", "adapool_core.jax")
# Public names outside __all__ that the stub declares too.
EXTRA_NAMES = {"adapool_core": ("__version__",)}
COMMAND = "python -m adapool_core._stubgen"
_SIMPLE = (bool, int, float, str, type(None))


class StubError(Exception):
    """A public name the generator cannot write into a stub."""


def stub_path(module) -> Path:
    """The stub beside a module (``__init__.py`` -> ``__init__.pyi``: a package's stub, e.g.
    ``adapool_core/torch/__init__.pyi``)."""
    return Path(module.__file__).with_suffix(".pyi")


class _Module:
    """The stub of one module: its imports and its definitions."""

    def __init__(self, module):
        self.module = module
        self.public = set(module.__all__)
        self.from_imports: dict[str, set[str]] = {"typing": set()}
        self.module_imports: set[tuple[str, str]] = set()

    # --- annotations ------------------------------------------------------------------

    def _import_name(self, name: str, namespace: dict) -> None:
        from . import _typing

        if name in self.public or hasattr(builtins, name):
            return
        obj = namespace.get(name, self.module.__dict__.get(name))
        if obj is None and name in sys.modules:
            obj = sys.modules[name]
        if inspect.ismodule(obj):
            self.module_imports.add((obj.__name__, name))
        elif obj is not None and getattr(typing, name, None) is obj:  # before _typing, which imports typing's
            self.from_imports["typing"].add(name)
        elif obj is not None and name in _typing.__all__ and getattr(_typing, name) is obj:
            self.from_imports.setdefault(_typing.__name__, set()).add(name)
        elif (obj is not None and getattr(obj, "__name__", None) == name
              and getattr(importlib.import_module(obj.__module__), name, None) is obj):
            self.from_imports.setdefault(obj.__module__, set()).add(name)
        else:
            raise StubError(f"{self.module.__name__}: annotation name {name!r} resolves to {obj!r}, which no "
                            f"module exports under that name; use a name of typing, torch, jax or "
                            f"adapool_core._typing")

    def annotation(self, ann, namespace: dict) -> str:
        """The stub text of one annotation, its names imported."""
        if ann is inspect.Parameter.empty:
            self.from_imports.setdefault("_typeshed", set()).add("Incomplete")
            return "Incomplete"
        text = ann if isinstance(ann, str) else inspect.formatannotation(ann)
        for node in ast.walk(ast.parse(text, mode="eval")):
            if isinstance(node, ast.Name):
                self._import_name(node.id, namespace)
        return text

    # --- signatures --------------------------------------------------------------------

    @staticmethod
    def _default(value) -> str:
        if isinstance(value, _SIMPLE):
            return repr(str(value)) if isinstance(value, str) else repr(value)
        if isinstance(value, tuple) and all(isinstance(v, _SIMPLE) and not isinstance(v, str) for v in value):
            return repr(value)
        return "..."

    def _params(self, sig: inspect.Signature, namespace: dict, method: bool) -> list[tuple]:
        """``(name, kind, annotation text, default text or None)`` per parameter."""
        out = []
        for i, p in enumerate(sig.parameters.values()):
            if method and i == 0:
                out.append((p.name, p.kind, None, None))
                continue
            ann = self.annotation(p.annotation, namespace)
            default = None if p.default is inspect.Parameter.empty else self._default(p.default)
            out.append((p.name, p.kind, ann, default))
        return out

    @staticmethod
    def _join(params: list[tuple]) -> str:
        parts, star = [], False
        for name, kind, ann, default in params:
            if kind is inspect.Parameter.VAR_POSITIONAL:
                parts.append(f"*{name}: {ann}")
                star = True
                continue
            if kind is inspect.Parameter.VAR_KEYWORD:
                parts.append(f"**{name}: {ann}")
                continue
            if kind is inspect.Parameter.KEYWORD_ONLY and not star:
                parts.append("*")
                star = True
            text = name if ann is None else f"{name}: {ann}"
            if default is not None:
                text += f" = {default}" if ann is not None else f"={default}"
            parts.append(text)
        return ", ".join(parts)

    def function(self, name: str, fn, indent: str = "", method: bool = False) -> list[str]:
        sig = inspect.signature(fn)
        namespace = getattr(fn, "__globals__", {})
        params = self._params(sig, namespace, method)
        if sig.return_annotation is inspect.Signature.empty and name == "__init__":
            returns = "None"
        else:
            returns = self.annotation(sig.return_annotation, namespace)
        variants = self._mask_overloads(params, returns)
        if variants is None:
            return [f"{indent}def {name}({self._join(params)}) -> {returns}: ..."]
        self.from_imports["typing"].update({"Literal", "overload"})
        lines = []
        for params_i, returns_i in variants:
            lines += [f"{indent}@overload", f"{indent}def {name}({self._join(params_i)}) -> {returns_i}: ..."]
        return lines

    @staticmethod
    def _mask_overloads(params: list[tuple], returns: str):
        """``return_mask`` (or ``return_grad_w``) False -> ``A``, True -> ``tuple[A, A]``, bool -> both,
        where returns is ``A | tuple``."""
        names = [p[0] for p in params]
        flag = next((f for f in ("return_mask", "return_grad_w") if f in names), None)
        if flag is None:
            return None
        tree = ast.parse(returns, mode="eval").body
        if not (isinstance(tree, ast.BinOp) and isinstance(tree.op, ast.BitOr)):
            return None
        single, pair = ast.unparse(tree.left), ast.unparse(tree.right)
        at = names.index(flag)
        before, mask, after = params[:at], params[at], params[at + 1:]
        keyword = inspect.Parameter.KEYWORD_ONLY
        if mask[1] is keyword:  # already keyword-only: one True overload is enough
            return [(before + [(mask[0], keyword, "Literal[False]", "False")] + after, single),
                    (before + [(mask[0], keyword, "Literal[True]", None)] + after, pair),
                    (params, returns)]
        as_keywords = [(n, keyword if k is inspect.Parameter.POSITIONAL_OR_KEYWORD else k, a, d)
                       for n, k, a, d in after]
        required = [(n, k, a, None) for n, k, a, d in before]
        return [(before + [(mask[0], mask[1], "Literal[False]", "False")] + after, single),
                (before + [(mask[0], keyword, "Literal[True]", None)] + as_keywords, pair),
                (required + [(mask[0], mask[1], "Literal[True]", None)] + after, pair),
                (params, returns)]

    # --- classes -----------------------------------------------------------------------

    def _flatten(self, cls) -> tuple[list, list]:
        """The bases a stub names (public or foreign) and the private package classes folded in."""
        bases, folded = [], [cls]
        for base in cls.__bases__:
            own = base.__module__.split(".")[0] == "adapool_core"
            if base is object:
                continue
            if not own or (base.__name__ in self.public and getattr(self.module, base.__name__) is base):
                bases.append(base)
            else:
                more_bases, more_folded = self._flatten(base)
                bases += [b for b in more_bases if b not in bases]
                folded += [c for c in more_folded if c not in folded]
        return bases, folded

    def _base_text(self, base) -> str:
        if base.__name__ in self.public:
            return base.__name__
        self.from_imports.setdefault(base.__module__, set()).add(base.__name__)
        return base.__name__

    def klass(self, name: str, cls) -> list[str]:
        bases, folded = self._flatten(cls)
        head = f"class {name}({', '.join(self._base_text(b) for b in bases)}):" if bases else f"class {name}:"
        lines, seen = [head], set()
        for c in folded:
            namespace = vars(sys.modules[c.__module__])
            for attr, ann in c.__dict__.get("__annotations__", {}).items():
                if not attr.startswith("_") and attr not in seen:
                    seen.add(attr)
                    lines.append(f"    {attr}: {self.annotation(ann, namespace)}")
        members = {}
        for c in reversed(folded):  # the most derived definition wins
            for attr, value in c.__dict__.items():
                if attr in ("__init__", "__call__") or not attr.startswith("_"):
                    members[attr] = value
        for attr in sorted(members, key=lambda a: (a != "__init__", a)):
            value = members[attr]
            if attr in seen:
                continue
            if isinstance(value, property) and value.fget is not None:
                lines += ["    @property"] + self.function(attr, value.fget, "    ", method=True)
            elif isinstance(value, staticmethod):
                lines += ["    @staticmethod"] + self.function(attr, value.__func__, "    ")
            elif isinstance(value, classmethod):
                lines += ["    @classmethod"] + self.function(attr, value.__func__, "    ", method=True)
            elif inspect.isfunction(value):
                lines += self.function(attr, value, "    ", method=True)
        if "forward" in members and "__call__" not in members and inspect.isfunction(members["forward"]):
            # nn.Module.__call__ runs forward: give calls forward's types.
            lines += self.function("__call__", members["forward"], "    ", method=True)
        return lines if len(lines) > 1 else lines + ["    ..."]

    # --- the module ----------------------------------------------------------------------

    def render(self) -> str:
        body, aliases = [], []
        for name in sorted(self.module.__all__):
            obj = getattr(self.module, name)
            own = getattr(obj, "__name__", name)
            if own != name and own in self.public and getattr(self.module, own) is obj:
                aliases.append(f"{name} = {own}")
            elif inspect.isclass(obj):
                body += [""] + self.klass(name, obj) + [""]
            elif callable(obj):
                body += self.function(name, obj) + [""]
            else:
                raise StubError(f"{self.module.__name__}.{name}: not a function or class ({type(obj).__name__})")
        for name in EXTRA_NAMES.get(self.module.__name__, ()):
            body.append(f"{name}: {type(getattr(self.module, name)).__name__}")
        header = [f"# Generated by `{COMMAND}` from the runtime objects of {self.module.__name__}: do not edit.",
                  "# Regenerate after changing a public signature; tests/test_stubs.py checks it is current."]
        imports = sorted(f"import {mod}" if mod == alias else f"import {mod} as {alias}"
                         for mod, alias in self.module_imports)
        imports += [f"from {mod} import {', '.join(sorted(names))}"
                    for mod, names in sorted(self.from_imports.items()) if names]
        names = sorted(self.module.__all__)
        all_lines = ["__all__ = ["] + [f"    {n!r}," for n in names] + ["]"]
        text = "\n".join(header + [""] + imports + [""] + all_lines + [""] + body + [""] + aliases)
        return "\n".join(line.rstrip() for line in text.strip().splitlines()).replace("\n\n\n", "\n\n") + "\n"


def render(module_name: str) -> str:
    """The stub text of one public module."""
    return _Module(importlib.import_module(module_name)).render()


def main(argv: list[str] | None = None) -> int:
    """Write every stub, or with ``--check`` report the stale ones (exit status 1)."""
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    stale = []
    for name in MODULES:
        path = stub_path(importlib.import_module(name))
        text = render(name)
        old = path.read_text() if path.exists() else ""
        if old == text:
            continue
        stale.append(str(path))
        if check:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                                       f"{path} (committed)", f"{path} (generated)"))
        else:
            path.write_text(text)
    if check and stale:
        print(f"stale stubs: {', '.join(stale)}; run `{COMMAND}`")
        return 1
    for path in stale:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
