"""Deployments: both flows scheduled nightly (02:00 by default, configurable) with described parameters."""

from __future__ import annotations

from deployments.serve import build_deployments
from seiscore.core.settings import get_settings


def test_method_parameter_lists_the_registered_methods():
    """The run form of process-survey offers the registered methods as choices (an enum), none else."""
    from prefect.utilities.callables import parameter_schema

    from flows.process_survey import process_survey
    from seiscore.methods.registry import names

    schema = parameter_schema(process_survey).model_dump()
    choices = set(_enum(schema, "method"))
    assert {"tlsm", "ssb"} <= choices <= set(names())  # names() also has methods tests registered since the import
    assert "denoiser" not in schema["properties"]


def _enum(schema: dict, name: str) -> list:
    prop = schema["properties"][name]
    defs = schema.get("definitions") or schema.get("$defs") or {}
    for option in prop.get("anyOf", [prop]):
        if "$ref" in option:
            option = defs[option["$ref"].rsplit("/", 1)[-1]]
        if "enum" in option:
            return option["enum"]
    raise AssertionError(f"parameter {name!r} has no enum in {prop}")


def test_nightly_deployments_with_parameter_descriptions(monkeypatch):
    deps = {d.flow_name: d for d in build_deployments(get_settings(), survey="penobscot")}
    assert {"process-survey", "reprocess-archive"} <= set(deps)
    for d in deps.values():
        if d.flow_name in ("process-survey", "reprocess-archive"):
            assert d.name == "nightly" and d.schedules[0].schedule.cron == "0 2 * * *"
    props = deps["process-survey"]._parameter_openapi_schema.properties
    assert set(props) >= {"survey", "method", "params", "export_segy", "catalog", "force"}
    assert all(p.get("description") for p in props.values())
    assert {"tlsm", "ssb"} <= set(_enum(deps["process-survey"]._parameter_openapi_schema.model_dump(), "method"))
    assert deps["process-survey"].parameters == {"survey": "penobscot"}
    fit = deps["fit-method"]  # manual trigger: no schedule, the run form lists the methods
    assert fit.name == "manual" and not fit.schedules and fit.entrypoint == "flows.fit_method.fit_method_flow"
    assert {"tlsm", "ssb"} <= set(_enum(fit._parameter_openapi_schema.model_dump(), "method"))
    monkeypatch.setenv("SEIS_SCHEDULE_CRON", "30 1 * * *")
    monkeypatch.setenv("SEIS_SCHEDULE_TIMEZONE", "Europe/Oslo")
    d = build_deployments(get_settings())[1]
    assert d.schedules[0].schedule.cron == "30 1 * * *" and d.schedules[0].schedule.timezone == "Europe/Oslo"
    monkeypatch.setenv("SEIS_SCHEDULE_INTERVAL_S", "3600")
    d = build_deployments(get_settings())[0]
    schedule = d.schedules[0].schedule
    assert schedule.interval.total_seconds() == 3600 and schedule.timezone == "Europe/Oslo"
    # imported as a package module, so the scheduler and workers of an existing Dask cluster can unpickle its tasks
    assert d.entrypoint == "flows.process_survey.process_survey"
