"""`api.fast_reads.FastReads` serves the common record downloads without FastAPI's routing and
dependency solving. It must give exactly the answer FastAPI gives — status, headers, body, audit
entry, metrics label, rate limit — for every request it serves, and leave every other request to
FastAPI. Each request below is sent twice, once through the fast path and once with the fast path
switched off (every request then goes through FastAPI), and the two answers are compared."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.test_api_support import (HOME_AGENCY, OFFICER_PASSWORD, OTHER_AGENCY, OWNER_A, OWNER_B, World, add_grant,
                                    bearer, records_home)

MISSING_URI = f"{HOME_AGENCY}.giay_khai_sinh.01JF0000000000000000000000"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    from api.app import ApiOptions, create_app

    with records_home(tmp_path_factory.mktemp("fast") / "home") as (settings, records):
        # keys stay in the key cache for the whole module (the fast path serves cached keys only)
        app = create_app(settings, ApiOptions(rate_per_second=100_000, burst=100_000, auth_cache_seconds=3600))
        routes: list[str] = []

        def route_spy(inner):  # noqa: ANN001, ANN202 (outermost ASGI wrapper: the route each request ended on)
            async def spy(scope, receive, send):  # noqa: ANN001, ANN202
                await inner(scope, receive, send)
                if scope["type"] == "http":
                    route = scope.get("route")
                    routes.append(getattr(route, "path", "unmatched"))
            return spy

        app.add_middleware(route_spy)
        with TestClient(app) as client:
            s = app.state.services
            w = World(client=client, services=s)
            w.routes = routes  # type: ignore[attr-defined]
            w.records = records
            ref = {o: s.repository.owner_key(o) for o in (OWNER_A, OWNER_B)}
            keys = {"home_agency": s.access.create_client("Một cửa", "agency", agency_code=HOME_AGENCY),
                    "other_agency": s.access.create_client("Bộ Công an", "agency", agency_code=OTHER_AGENCY),
                    "citizen_a": s.access.create_client("VNeID A", "citizen", owner_key=ref[OWNER_A]),
                    "admin_key": s.access.create_client("ops", "admin")}
            w.keys = {name: bearer(k.secret) for name, k in keys.items()}
            w.keys["x_api_key"] = {"X-API-Key": keys["citizen_a"].secret}
            s.access.add_user("officer1", "officer", OFFICER_PASSWORD)
            r = client.post("/v1/auth/login", json={"username": "officer1", "password": OFFICER_PASSWORD})
            w.keys["officer"] = {"Cookie": f"sohoa_session={r.cookies['sohoa_session']}"}
            client.cookies.clear()
            add_grant(s, ref[OWNER_A], OTHER_AGENCY, "p-active")
            for headers in w.keys.values():  # every key verified once: the fast path serves them from now on
                client.get("/v1/me/records", headers=headers)
            yield w


def _answer(w: World, path: str, headers: dict[str, str]) -> dict:
    before = w.services.audit_log.count()
    r = w.client.get(path, headers=headers, follow_redirects=False)
    body = r.json() if r.headers.get("content-type", "").endswith("json") else r.content
    if isinstance(body, dict) and "url" in body:  # a presigned URL is signed at its own second
        body = {k: v for k, v in body.items() if k not in ("url", "expires_at")}
    entry = w.services.audit_log.events(limit=1)[0]
    return {"status": r.status_code, "headers": {k: v for k, v in r.headers.items() if k != "location"},
            "body": body, "route": w.routes[-1],  # type: ignore[attr-defined]
            "audited": w.services.audit_log.count() - before, "audit": (entry.actor, entry.action, entry.outcome, entry.record_uri, entry.record_version, entry.basis,
                      entry.purpose, entry.details)}


def _both(w: World, monkeypatch: pytest.MonkeyPatch, path: str, headers: dict[str, str]) -> tuple[dict, dict, bool]:
    import api.fast_reads as fast

    served: list[bool] = []
    real = fast.admit  # the fast path's first step once it has taken the request

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        served.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(fast, "admit", counted)
    quick = _answer(w, path, headers)
    monkeypatch.setattr(fast, "cached_key_principal", lambda request: None)  # FastAPI for everything
    slow = _answer(w, path, headers)
    monkeypatch.undo()
    return quick, slow, bool(served)


PURPOSE = {"Sohoa-Purpose": "p-active"}


def _cases(w: World) -> list[tuple[str, dict[str, str], bool]]:
    """(path, headers, served by the fast path?)"""
    a, b = w.records["a_home"], w.records["b_home"]
    k = w.keys
    return [
        (f"/v1/records/{a}/pdf", k["home_agency"], True),  # issuer
        (f"/v1/records/{a}/pdf?delivery=proxy", k["citizen_a"], True),  # owner
        (f"/v1/records/{a}/record?delivery=redirect", k["x_api_key"], True),  # local store: answered as proxy
        (f"/v1/records/{a}/versions/1/pdf", {**k["other_agency"], **PURPOSE}, True),  # consent
        (f"/v1/records/{a}/versions/2/record", {**k["other_agency"], **PURPOSE}, True),
        (f"/v1/records/{a}/versions/9/pdf", k["home_agency"], True),  # no such version: 404
        (f"/v1/records/{a}/pdf", k["other_agency"], True),  # no purpose: 403
        (f"/v1/records/{b}/pdf", {**k["other_agency"], **PURPOSE}, True),  # grant of another owner: 403
        (f"/v1/records/{MISSING_URI}/pdf", {**k["other_agency"], **PURPOSE}, True),  # same 403
        (f"/v1/records/{b}/record", k["citizen_a"], True),  # someone else's record: 403
        (f"/v1/records/not-a-uri/pdf", k["home_agency"], True),  # 422 invalid URI (from check_read)
        (f"/v1/records/{a}/pdf", {**k["other_agency"], "Sohoa-Purpose": "bad purpose!"}, True),  # 422
        (f"/v1/records/{a}/pdf", {**k["other_agency"], **PURPOSE, "Sohoa-On-Behalf-Of": "12"}, True),  # 422
        (f"/v1/records/{a}/pdf", k["admin_key"], True),  # admins do not read documents: 403 forbidden
        (f"/v1/records/{a}/pdf", {**k["home_agency"], "If-None-Match": "\"nope\""}, True),
        # everything below goes to FastAPI
        (f"/v1/records/{a}/pdf?delivery=bogus", k["home_agency"], False),  # 422 from FastAPI's validation
        (f"/v1/records/{a}/pdf?delivery=redirect&x=1", k["home_agency"], False),
        (f"/v1/records/{a}/versions/0/pdf", k["home_agency"], False),
        (f"/v1/records/{a}/versions/01/pdf", k["home_agency"], False),
        (f"/v1/records/{a}/versions/1000001/pdf", k["home_agency"], False),
        (f"/v1/records/{'x' * 161}/pdf", k["home_agency"], False),
        (f"/v1/records/{a}/pdf", k["officer"], False),  # session cookie
        (f"/v1/records/{a}/pdf", {"Authorization": "Basic eDp5"}, False),  # 401
        (f"/v1/records/{a}/pdf", {"Authorization": "Bearer sohoa_000000000000_" + "x" * 43}, False),  # 401
        (f"/v1/records/{a}/pdf", {}, False),  # 401
        (f"/v1/records/{a}", k["home_agency"], False),  # metadata: not a download
    ]


def test_fast_path_answers_exactly_like_fastapi(world, monkeypatch):
    for path, headers, fast in _cases(world):
        quick, slow, served = _both(world, monkeypatch, path, headers)
        assert served == fast, (path, headers, quick["status"])
        assert quick == slow, (path, headers)


def test_if_none_match_and_metrics_labels(world, monkeypatch):
    a = world.records["a_home"]
    first = world.client.get(f"/v1/records/{a}/pdf", headers=world.keys["home_agency"])
    quick, slow, served = _both(world, monkeypatch, f"/v1/records/{a}/pdf",
                                {**world.keys["home_agency"], "If-None-Match": first.headers["etag"]})
    assert served and quick == slow and quick["status"] == 304
    versioned = world.client.get(f"/v1/records/{a}/versions/2/record", headers=world.keys["home_agency"])
    assert versioned.status_code == 200  # the fast path labels it with its route template, not the path
    metrics = world.client.get("/metrics").text
    assert 'route="/v1/records/{uri}/pdf",status="304"' in metrics
    assert 'route="/v1/records/{uri}/versions/{version}/record",status="200"' in metrics


def test_rate_limit_on_the_fast_path(world):
    s = world.services
    key = s.access.create_client("slow agency", "agency", agency_code=HOME_AGENCY, rate_per_second=0.001, burst=2).secret
    url = f"/v1/records/{world.records['a_home']}/pdf"
    codes = [world.client.get(url, headers=bearer(key)) for _ in range(3)]
    assert [c.status_code for c in codes] == [200, 200, 429]  # the 2nd and 3rd come from the key cache
    assert codes[2].json()["code"] == "rate_limited" and int(codes[2].headers["retry-after"]) >= 1
