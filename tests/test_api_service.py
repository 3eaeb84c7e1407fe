"""The API as a service: keys (create, rotate, revoke), desk sessions, rate limits, problem+json,
health/readiness/metrics, consent and authorization through the citizen endpoints, and the
`sohoa clients` / `sohoa users` commands."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.test_api_support import (HOME_AGENCY, OFFICER_PASSWORD, OTHER_AGENCY, OWNER_A, OWNER_B, REPRESENTATIVE,
                                    bearer, init_home, store_record)


@pytest.fixture
def app_env(sohoa_home, monkeypatch):
    from api.app import ApiOptions, create_app
    from ingest.settings import load_settings
    init_home(sohoa_home)
    settings = load_settings()
    app = create_app(settings, ApiOptions(rate_per_second=1000, burst=1000))
    with TestClient(app) as client:
        yield client, app.state.services, settings


def admin(services) -> dict[str, str]:  # noqa: ANN001
    return bearer(services.access.create_client("ops", "admin", rate_per_second=1000, burst=1000).secret)


def test_health_ready_metrics_openapi(app_env):
    client, _, _ = app_env
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ok"] and ready["db"]["ok"] and ready["store"]["kind"] == "local"
    schema = client.get("/openapi.json").json()
    assert schema["info"]["title"] == "sohoa API"
    paths = set(schema["paths"])
    for p in ("/v1/records/{uri}/pdf", "/v1/records/{uri}/versions/{version}/pdf", "/v1/jobs", "/v1/verify",
              "/v1/me/grants", "/v1/me/access-log", "/v1/me/authorizations", "/v1/admin/grants"):
        assert p in paths
    assert all(p.startswith("/v1/") or p in ("/healthz", "/readyz", "/metrics") for p in paths)
    client.get("/v1/records/x.y.z", headers=bearer("sohoa_000000000000_" + "A" * 43))
    metrics = client.get("/metrics").text
    assert 'sohoa_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in metrics
    assert 'route="/v1/records/{uri}"' in metrics and "x.y.z" not in metrics


def test_gc_freeze_after_start_up_only_when_asked(sohoa_home):
    """`sohoa serve` freezes the start-up objects (full collections then skip them); an app
    embedded in another process (this one) does not, unless asked."""
    import gc

    from api.app import ApiOptions, create_app
    from ingest.settings import load_settings

    init_home(sohoa_home)
    gc.unfreeze()
    try:
        with TestClient(create_app(load_settings(), ApiOptions())) as client:
            assert client.get("/healthz").status_code == 200
            assert gc.get_freeze_count() == 0
        with TestClient(create_app(load_settings(), ApiOptions(gc_freeze=True))) as client:
            assert client.get("/healthz").status_code == 200
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("enabled", [False, True])
def test_opentelemetry_only_when_asked(sohoa_home, monkeypatch, enabled: bool):
    """An operator's global OpenTelemetry provider gets FastAPI's request spans only with
    SOHOA_API_OPENTELEMETRY=true; never its exception log records (they bypass our masking)."""
    from opentelemetry import trace

    from api.app import ApiOptions, create_app
    from ingest.settings import load_settings

    spans: list[str] = []

    class RecordingTracer(trace.NoOpTracer):
        def start_span(self, name, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
            spans.append(name)
            return super().start_span(name, *args, **kwargs)

        def start_as_current_span(self, name, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
            spans.append(name)
            return super().start_as_current_span(name, *args, **kwargs)

    class OperatorProvider(trace.TracerProvider):  # not a no-op provider: FastAPI would skip those
        def get_tracer(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
            return RecordingTracer()

    monkeypatch.setattr(trace, "get_tracer_provider", lambda: OperatorProvider())
    if enabled:
        monkeypatch.setenv("SOHOA_API_OPENTELEMETRY", "true")
    init_home(sohoa_home)
    with TestClient(create_app(load_settings(), None if enabled else ApiOptions())) as client:
        assert client.get("/healthz").status_code == 200
    assert bool(spans) is enabled and ("GET" in spans) is enabled, spans


def test_readyz_reports_a_broken_database(sohoa_home, monkeypatch):
    from api.app import create_app
    from ingest.settings import load_settings

    init_home(sohoa_home)
    monkeypatch.setenv("SOHOA_DB_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    with TestClient(create_app(load_settings())) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["ok"] is False
        assert client.get("/healthz").status_code == 200


def test_problem_json_shape(app_env):
    client, _, _ = app_env
    r = client.get("/v1/me/records")
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body == {"type": "urn:sohoa:problem:unauthenticated", "title": "Authentication required",
                    "status": 401, "code": "unauthenticated", "detail": "missing or invalid credentials",
                    "instance": "/v1/me/records"}
    assert client.get("/v1/nothing-here").json()["code"] == "not_found"
    assert client.get("/v1/me/records", headers={"Authorization": "Basic Zm9vOmJhcg=="}).json()["code"] == "unauthenticated"


def test_key_lifecycle_through_the_api(app_env):
    client, services, _ = app_env
    adm = admin(services)
    created = client.post("/v1/admin/clients", headers=adm,
                          json={"name": "Bộ Công an", "kind": "agency", "agency_code": OTHER_AGENCY})
    assert created.status_code == 201
    first, cid = created.json()["api_key"], created.json()["client"]["id"]
    assert first.startswith("sohoa_") and first not in json.dumps([c.__dict__ for c in services.access.list_clients()], default=str)
    assert client.get("/v1/auth/me", headers=bearer(first)).json()["agency_code"] == OTHER_AGENCY
    # rotate with a grace period: both work; then without: only the newest
    second = client.post(f"/v1/admin/clients/{cid}/rotate", headers=adm, json={"grace_seconds": 3600}).json()["api_key"]
    assert client.get("/v1/auth/me", headers=bearer(first)).status_code == 200
    assert client.get("/v1/auth/me", headers=bearer(second)).status_code == 200
    third = client.post(f"/v1/admin/clients/{cid}/rotate", headers=adm, json={}).json()["api_key"]
    for old in (first, second):
        assert client.get("/v1/auth/me", headers=bearer(old)).status_code == 401
    assert client.get("/v1/auth/me", headers=bearer(third)).status_code == 200
    assert client.delete(f"/v1/admin/clients/{cid}", headers=adm).status_code == 204
    r = client.get("/v1/auth/me", headers=bearer(third))
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
    # a tampered secret with a valid key id is refused
    tampered = third[:-2] + ("AA" if not third.endswith("AA") else "BB")
    assert client.get("/v1/auth/me", headers=bearer(tampered)).status_code == 401
    actions = [e.action for e in services.audit_log.events(limit=50)]
    assert {"client.create", "client.rotate", "client.revoke"} <= set(actions)
    # only admins manage clients
    assert client.get("/v1/admin/clients", headers=bearer(third)).status_code == 401
    agency = services.access.create_client("x", "agency", agency_code=HOME_AGENCY).secret
    assert client.get("/v1/admin/clients", headers=bearer(agency)).json()["code"] == "forbidden"


def test_rate_limit_per_client(app_env):
    from api.ratelimit import RateLimiter

    client, services, _ = app_env
    now = [1000.0]
    services.limiter = RateLimiter(5, 3, clock=lambda: now[0])  # a frozen clock: no timing in the test
    services.failure_limiter = RateLimiter(1, 5, clock=lambda: now[0])
    key = bearer(services.access.create_client("x", "agency", agency_code=HOME_AGENCY).secret)
    other = bearer(services.access.create_client("y", "agency", agency_code=HOME_AGENCY).secret)
    assert [client.get("/v1/auth/me", headers=key).status_code for _ in range(4)] == [200, 200, 200, 429]
    limited = client.get("/v1/auth/me", headers=key)
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert limited.headers["Retry-After"] == "1"
    assert client.get("/v1/auth/me", headers=other).status_code == 200  # buckets are per client
    now[0] += 0.2  # one token back (5/s)
    assert [client.get("/v1/auth/me", headers=key).status_code for _ in range(2)] == [200, 429]
    # a client's own rate (set at creation) overrides the default
    fast = bearer(services.access.create_client("z", "agency", agency_code=HOME_AGENCY, rate_per_second=100,
                                                burst=10).secret)
    assert all(client.get("/v1/auth/me", headers=fast).status_code == 200 for _ in range(10))
    # repeated bad keys from one address are slowed down too
    bad = [client.get("/v1/auth/me", headers=bearer("sohoa_0123456789ab_" + "x" * 43)).status_code for _ in range(7)]
    assert bad == [401] * 5 + [429] * 2
    assert 'sohoa_rate_limited_total{kind="agency"}' in client.get("/metrics").text


def test_desk_login_session_and_pages(app_env):
    from fastapi import Depends

    from api.auth import Principal, require_officer

    client, services, _ = app_env
    services.access.add_user("lan", "officer", OFFICER_PASSWORD)
    app = client.app

    @app.get("/desk-probe", include_in_schema=False)
    def probe(user: Principal = Depends(require_officer)) -> dict:
        return {"user": user.id, "agency": user.agency_code}

    page = client.get("/desk-probe", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/desk-probe"
    assert client.get("/desk-probe").status_code == 401
    form = client.get("/login?next=/desk-probe")
    assert form.status_code == 200 and 'name="password"' in form.text
    wrong = client.post("/login", data={"username": "lan", "password": "sai-mat-khau-1", "next": "/desk-probe"})
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
    ok = client.post("/login", data={"username": "lan", "password": OFFICER_PASSWORD, "next": "/desk-probe"},
                     follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/desk-probe"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert client.get("/desk-probe").json() == {"user": "lan", "agency": HOME_AGENCY}
    # open redirects are refused
    again = client.post("/login", data={"username": "lan", "password": OFFICER_PASSWORD, "next": "//evil.example/"},
                        follow_redirects=False)
    assert again.headers["location"] == "/"
    # cross-site POST with the cookie is refused; same-site works
    cross = client.post("/v1/auth/logout", headers={"Origin": "https://evil.example"})
    assert cross.status_code == 204  # logout is harmless, but an authenticated POST is checked:
    ok = client.post("/login", data={"username": "lan", "password": OFFICER_PASSWORD}, follow_redirects=False)
    files = {"files": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")}
    refused = client.post("/v1/jobs", data={"owner_id": OWNER_A}, files=files, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and refused.json()["detail"] == "cross-site request refused"
    client.post("/logout")
    assert client.get("/desk-probe").status_code == 401
    # disabled users lose their sessions
    client.post("/login", data={"username": "lan", "password": OFFICER_PASSWORD})
    services.access.disable_user("lan")
    assert client.get("/desk-probe").status_code == 401


def test_consent_and_authorization_through_the_api(app_env):
    from ingest.pipeline import Pipeline

    client, services, settings = app_env
    pipeline = Pipeline(settings)
    rec = store_record(pipeline, OWNER_A, "000.00.99.H30", "quyet_dinh", "QUYẾT ĐỊNH")
    pipeline.close()
    ref_a = services.repository.owner_key(OWNER_A)
    citizen = bearer(services.access.create_client("VNeID", "citizen", owner_key=ref_a, rate_per_second=1000, burst=1000).secret)
    agency = bearer(services.access.create_client("BCA", "agency", agency_code=OTHER_AGENCY, rate_per_second=1000, burst=1000).secret)
    url = f"/v1/records/{rec.uri}/pdf"
    purpose = {"Sohoa-Purpose": "1.004227"}
    assert client.get(url, headers={**agency, **purpose}).status_code == 403
    until = (datetime.now(timezone.utc) + timedelta(days=7)).isoformat()
    g = client.post("/v1/me/grants", headers=citizen, json={"agency_code": OTHER_AGENCY, "purpose": "1.004227",
                                                            "valid_until": until})
    assert g.status_code == 201 and g.json()["basis"] == "consent" and g.json()["active"]
    assert client.get(url, headers={**agency, **purpose}).status_code == 200
    assert client.get(url, headers={**agency, "Sohoa-Purpose": "other"}).status_code == 403
    assert client.delete(f"/v1/me/grants/{g.json()['id']}", headers=citizen).status_code == 204
    assert client.get(url, headers={**agency, **purpose}).status_code == 403
    assert client.get("/v1/me/grants", headers=citizen).json()[0]["active"] is False
    # someone else's grant id is "not found" for this citizen
    other = bearer(services.access.create_client("B", "citizen", owner_key=services.repository.owner_key(OWNER_B)).secret)
    assert client.delete(f"/v1/me/grants/{g.json()['id']}", headers=other).status_code == 404
    # bad input is a 422 problem, and a past end date is refused
    past = client.post("/v1/me/grants", headers=citizen, json={"agency_code": OTHER_AGENCY, "purpose": "x",
                                                               "valid_until": "2020-01-01T00:00:00+07:00"})
    assert past.status_code == 422 and past.json()["code"] == "invalid_request"
    # authorization (uỷ quyền): the representative reads, then not after revocation
    rep = bearer(services.access.create_client("R", "citizen",
                                               owner_key=services.repository.owner_key(REPRESENTATIVE)).secret)
    assert client.get(url, headers=rep).status_code == 403
    a = client.post("/v1/me/authorizations", headers=citizen,
                    json={"representative_id": REPRESENTATIVE, "valid_until": until, "reference": "15/2026/UQ"})
    assert a.status_code == 201 and a.json()["direction"] == "given"
    assert REPRESENTATIVE not in a.text
    assert client.get(url, headers=rep).status_code == 200
    assert client.get(url, headers={**agency, "Sohoa-On-Behalf-Of": REPRESENTATIVE}).status_code == 200
    assert client.get("/v1/me/authorizations", headers=rep).json()[0]["direction"] == "received"
    assert client.delete(f"/v1/me/authorizations/{a.json()['id']}", headers=citizen).status_code == 204
    assert client.get(url, headers=rep).status_code == 403
    bad = client.post("/v1/me/authorizations", headers=citizen, json={"representative_id": "12345", "valid_until": until})
    assert bad.status_code == 422 and "12345" not in bad.text
    # the citizen's log shows each attempt, allowed or denied, and who made it
    log = client.get("/v1/me/access-log", headers=citizen).json()["items"]
    seen = [(e["actor_kind"], e["outcome"]) for e in log if e["action"] == "record.download_pdf"]
    assert ("agency", "allowed") in seen and ("agency", "denied") in seen and ("citizen", "allowed") in seen
    # legal-basis grants are registered by admins, and citizens cannot withdraw them
    adm = admin(services)
    lg = client.post("/v1/admin/grants", headers=adm, json={
        "owner_id": OWNER_A, "agency_code": OTHER_AGENCY, "purpose": "1.004227",
        "legal_reference": "Luật Căn cước 2023, Điều 9", "valid_until": until})
    assert lg.status_code == 201 and lg.json()["basis"] == "legal_basis"
    assert client.get(url, headers={**agency, **purpose}).status_code == 200
    assert client.delete(f"/v1/me/grants/{lg.json()['id']}", headers=citizen).json()["code"] == "legal_basis_grant"
    assert client.delete(f"/v1/admin/grants/{lg.json()['id']}", headers=adm).status_code == 204
    assert client.get(url, headers={**agency, **purpose}).status_code == 403
    assert client.get("/v1/admin/audit/verify", headers=adm).json()["ok"] is True


def test_a_corrupted_object_is_refused_and_audited_as_failed(app_env):
    """A proxied read checks the bytes before sending them: a stored object changed behind the
    repository's back is a 500 `integrity_failure`, not a download, and the audit log says so."""
    from ingest.pipeline import Pipeline

    client, services, settings = app_env
    pipeline = Pipeline(settings)
    rec = store_record(pipeline, OWNER_A, HOME_AGENCY, "giay_khai_sinh", "GIẤY KHAI SINH")
    pipeline.close()
    intake = bearer(services.access.create_client("intake", "agency", agency_code=HOME_AGENCY).secret)
    url = f"/v1/records/{rec.uri}/pdf"
    assert client.get(url, headers=intake).status_code == 200
    path = services.repository.objects._path(rec.object_key)
    path.chmod(0o600)  # the local store keeps objects read-only
    data = path.read_bytes()
    path.write_bytes(data[:-16] + bytes(16))
    for delivery in ("proxy", "redirect"):  # a local store cannot presign: both read the bytes
        r = client.get(f"{url}?delivery={delivery}", headers=intake)
        assert r.status_code == 500 and r.json()["code"] == "integrity_failure" and b"%PDF" not in r.content
    events = services.audit_log.events(record_uri=rec.uri, limit=3)
    assert [(e.action, e.outcome, e.details.get("error")) for e in events[:2]] == \
        [("record.download_pdf", "failed", "IntegrityFailure")] * 2
    assert events[2].outcome == "allowed"


def test_cli_clients_and_users(sohoa_home):
    import cli

    init_home(sohoa_home)
    runner = CliRunner()
    made = runner.invoke(cli.app, ["clients", "create", "Sở Tư pháp", "--kind", "agency", "--agency-code", "000.00.01.H29", "--json"])
    assert made.exit_code == 0, made.output
    key = json.loads(made.stdout)
    citizen = runner.invoke(cli.app, ["clients", "create", "VNeID", "--kind", "citizen", "--owner", OWNER_A, "--json"])
    assert citizen.exit_code == 0 and OWNER_A not in citizen.stdout
    bad = runner.invoke(cli.app, ["clients", "create", "x", "--kind", "agency"])
    assert bad.exit_code == 3 and "agency code" in bad.output
    rotated = runner.invoke(cli.app, ["clients", "rotate", key["client_id"], "--json"])
    assert rotated.exit_code == 0 and json.loads(rotated.stdout)["api_key"] != key["api_key"]
    listed = runner.invoke(cli.app, ["clients", "list", "--json"])
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["kind"] for r in rows} == {"agency", "citizen"} and all("api_key" not in r for r in rows)
    assert runner.invoke(cli.app, ["clients", "revoke", key["client_id"]]).exit_code == 0
    assert runner.invoke(cli.app, ["clients", "revoke", "c_0000000000000000"]).exit_code == 4
    short = runner.invoke(cli.app, ["users", "add", "lan", "--password-stdin"], input="short\n")
    assert short.exit_code == 3
    added = runner.invoke(cli.app, ["users", "add", "lan", "--role", "supervisor", "--password-stdin"],
                          input=OFFICER_PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert runner.invoke(cli.app, ["users", "list"]).stdout.split() == ["lan", "supervisor", "active"]
    verified = runner.invoke(cli.app, ["audit", "verify", "--json"])
    report = json.loads(verified.stdout)
    assert verified.exit_code == 0 and report["entries"] == 5 and report["uncovered"] == 0
