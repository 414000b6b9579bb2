"""The job function registry: the only way a name from data becomes code.

Job modules register functions with ``@job_function``; the project imports the modules listed in
``JOB_MODULES`` at start-up. A step's function name (from Alloy or the admin) is only ever looked up
in this registry: nothing here imports a module or resolves an attribute named by data, so a step
called ``os.system`` is simply an unknown name.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class UnknownJobFunction(LookupError):
    """A step names a function that no job module registered."""

    def __init__(self, name: str, close_matches: list[str]) -> None:
        self.name = name
        self.close_matches = close_matches
        hint = f"; did you mean {', '.join(close_matches)}?" if close_matches else ""
        super().__init__(f"function {name!r} is not registered{hint}")


class JobFunctionArgumentsError(TypeError):
    """A step's keyword arguments do not fit the registered function's signature."""


@dataclass(frozen=True)
class JobFunction:
    name: str
    func: Callable[..., Any]
    signature: inspect.Signature

    def check_kwargs(self, kwargs: Mapping[str, Any]) -> None:
        """Raise JobFunctionArgumentsError unless ``kwargs`` bind to the function's signature."""
        try:
            self.signature.bind(**kwargs)
        except TypeError as exc:
            raise JobFunctionArgumentsError(f"arguments do not fit {self.name}{self.signature}: {exc}") from exc


_registry: dict[str, JobFunction] = {}


def job_function(name: str | None = None) -> Callable[[F], F]:
    """Register the decorated function under ``name`` (default ``module.function``)."""

    def register(func: F) -> F:
        registered_name = name or f"{func.__module__}.{func.__qualname__}"
        existing = _registry.get(registered_name)
        if existing is not None and existing.func is not func:
            raise ValueError(f"job function {registered_name!r} is registered twice")
        _registry[registered_name] = JobFunction(registered_name, func, inspect.signature(func))
        return func

    return register


def get_job_function(name: str) -> JobFunction:
    try:
        return _registry[name]
    except KeyError:
        raise UnknownJobFunction(name, difflib.get_close_matches(name, _registry, n=3, cutoff=0.8)) from None


def registered_names() -> list[str]:
    return sorted(_registry)


def load_job_modules(modules: Iterable[str]) -> None:
    """Import the configured job modules (operator configuration, never data from Alloy)."""
    for module in modules:
        importlib.import_module(module)
