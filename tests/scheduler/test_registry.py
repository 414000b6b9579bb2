import sys

import pytest

from scheduler import registry
from scheduler.jobspec import JobSpecError, parse_steps
from scheduler.registry import UnknownJobFunction, get_job_function, job_function


def test_the_example_functions_are_registered_at_start_up():
    assert {"examples.echo", "examples.sleep", "examples.fail"} <= set(registry.registered_names())
    assert get_job_function("examples.echo").func(message="hi") == "hi"


def test_an_unknown_name_is_refused_with_close_matches():
    with pytest.raises(UnknownJobFunction) as caught:
        get_job_function("examples.ecko")
    assert str(caught.value) == "function 'examples.ecko' is not registered; did you mean examples.echo?"


def test_an_unknown_name_without_close_matches_says_so_plainly():
    with pytest.raises(UnknownJobFunction, match=r"^function 'zzz' is not registered$"):
        get_job_function("zzz")


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "subprocess.run", "this.s", "antigravity.fly"])
def test_a_name_from_data_is_never_imported(name):
    module = name.split(".")[0]
    was_loaded = module in sys.modules
    with pytest.raises(JobSpecError, match=f"function '{name}' is not registered"):
        parse_steps(name)
    with pytest.raises(UnknownJobFunction):
        get_job_function(name)
    assert (module in sys.modules) == was_loaded


def test_default_name_is_module_and_function():
    def report() -> str:
        return "ok"

    job_function()(report)
    try:
        assert get_job_function(f"{__name__}.test_default_name_is_module_and_function.<locals>.report").func is report
    finally:
        registry._registry.pop(f"{__name__}.test_default_name_is_module_and_function.<locals>.report")


def test_registering_two_functions_under_one_name_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        job_function("examples.echo")(lambda message: message)
