"""Job functions: modules here register functions that Alloy items and local jobs can run.

Add a module, decorate its functions with ``@job_function("area.name")``, and list the module in
``JOB_MODULES``.
"""
