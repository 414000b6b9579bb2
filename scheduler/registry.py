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
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured

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


class JobModuleError(ImproperlyConfigured):
    """A module named in ``JOB_MODULES`` failed to import; the message is one line saying where and why."""


def load_job_modules(modules: Iterable[str]) -> None:
    """Import the configured job modules (operator configuration, never data from Alloy).

    Raises JobModuleError naming the module, the error and the file and line it came from: a process
    that cannot register its job functions must not start, and its operator needs one line, not the
    import machinery's traceback.
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except SystemExit as exc:  # sys.exit() at import would end the process without a word
            raise JobModuleError(
                f"JOB_MODULES names {module!r}, which called sys.exit({exc.code!r}) as it was imported{_where(exc)}"
            ) from exc
        except Exception as exc:
            raise JobModuleError(
                f"JOB_MODULES names {module!r}, which failed to import: {_one_line(exc)}{_where(exc)}"
            ) from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc.msg if isinstance(exc, SyntaxError) else exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _where(exc: BaseException) -> str:
    """`` (at file:line)`` of the error's origin: the syntax error's own place, else the last frame."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" (at {exc.filename}:{exc.lineno})"
    frames = traceback.extract_tb(exc.__traceback__)
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
