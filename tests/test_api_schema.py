"""Property-based run of schemathesis over the published OpenAPI schema: whatever the generated
request, as an admin, an agency or a citizen, the API never answers 5xx, and every error is
application/problem+json."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.test_api_support import HOME_AGENCY, OWNER_A, bearer, init_home, store_record

PRINCIPALS = ("admin", "agency", "citizen")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from api.app import ApiOptions, create_app
    from ingest.pipeline import Pipeline
    from ingest.settings import load_settings

    home = tmp_path_factory.mktemp("schema") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOHOA_HOME", str(home))
        mp.setenv("OMP_THREAD_LIMIT", "1")
        init_home(home)
        s = load_settings()
        pipeline = Pipeline(s)
        store_record(pipeline, OWNER_A, HOME_AGENCY, "giay_khai_sinh", "GIẤY KHAI SINH")
        pipeline.close()
        app = create_app(s, ApiOptions(rate_per_second=100_000, burst=100_000, job_workers=1,
                                       failed_auth_burst=100_000))
        services = app.state.services
        ref = services.repository.owner_key(OWNER_A)
        headers = {
            "admin": bearer(services.access.create_client("ops", "admin").secret),
            "agency": bearer(services.access.create_client("intake", "agency", agency_code=HOME_AGENCY).secret),
            "citizen": bearer(services.access.create_client("A", "citizen", owner_key=ref).secret),
        }
        yield app, headers
        services.close()


def operations(app):  # noqa: ANN001, ANN201
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_every_operation_without_server_errors(api):
    app, headers = api
    ops = operations(app)
    assert len(ops) >= 25

    for op in ops:
        @given(case=op.as_strategy())
        @settings(max_examples=6, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def no_server_error(case) -> None:  # noqa: ANN001
            for principal in PRINCIPALS:
                response = case.call(headers={**(case.headers or {}), **headers[principal]})
                assert response.status_code < 500, (principal, op.label, response.text[:500])
                if response.status_code >= 400:
                    assert response.headers["content-type"][0] == "application/problem+json", (op.label, response.text[:200])

        no_server_error()
