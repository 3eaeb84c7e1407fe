"""The authorization matrix, asserted in full: every principal x every read endpoint x
own / other / issued / granted / revoked / expired / not-yet-valid / wrong purpose / other type /
legal basis / representative — over real signed records in a real repository (SQLite + local).

A denied read and a read of a record that does not exist must be indistinguishable.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from tests.test_api_support import (HOME_AGENCY, OFFICER_PASSWORD, OTHER_AGENCY, OWNER_A, OWNER_B, REPRESENTATIVE,
                              World, add_grant, bearer, records_home)

MISSING_URI = f"{HOME_AGENCY}.giay_khai_sinh.01JF0000000000000000000000"
PURPOSES = ("p-active", "p-revoked", "p-expired", "p-future", "p-doctype", "p-legal", "p-none")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    from api.app import ApiOptions, create_app

    with records_home(tmp_path_factory.mktemp("authz") / "home", third_agency=True) as (settings, records):
        app = create_app(settings, ApiOptions(rate_per_second=100_000, burst=100_000))  # limits: tested elsewhere
        with TestClient(app) as client:
            s = app.state.services
            w = World(client=client, services=s)
            w.records = records
            ref = {o: s.repository.owner_key(o) for o in (OWNER_A, OWNER_B, REPRESENTATIVE)}
            w.owner_refs = {"A": ref[OWNER_A], "B": ref[OWNER_B]}
            keys = {
                "home_agency": s.access.create_client("Một cửa phường Bến Nghé", "agency", agency_code=HOME_AGENCY),
                "other_agency": s.access.create_client("Bộ Công an", "agency", agency_code=OTHER_AGENCY),
                "citizen_a": s.access.create_client("VNeID A", "citizen", owner_key=ref[OWNER_A]),
                "citizen_b": s.access.create_client("VNeID B", "citizen", owner_key=ref[OWNER_B]),
                "representative": s.access.create_client("VNeID R", "citizen", owner_key=ref[REPRESENTATIVE]),
                "admin_key": s.access.create_client("ops", "admin"),
            }
            w.keys = {name: bearer(k.secret) for name, k in keys.items()}
            for role in ("officer", "supervisor", "admin"):
                s.access.add_user(f"{role}1", role, OFFICER_PASSWORD)
                r = client.post("/v1/auth/login", json={"username": f"{role}1", "password": OFFICER_PASSWORD})
                assert r.status_code == 200, r.text
                w.keys["desk_admin" if role == "admin" else role] = {"Cookie": f"sohoa_session={r.cookies['sohoa_session']}"}
                client.cookies.clear()
            a = ref[OWNER_A]
            add_grant(s, a, OTHER_AGENCY, "p-active")
            revoked = add_grant(s, a, OTHER_AGENCY, "p-revoked")
            s.access.revoke_grant(revoked, revoked_by="test")
            add_grant(s, a, OTHER_AGENCY, "p-expired", start=timedelta(days=-30), end=timedelta(seconds=-1))
            add_grant(s, a, OTHER_AGENCY, "p-future", start=timedelta(days=1), end=timedelta(days=30))
            add_grant(s, a, OTHER_AGENCY, "p-doctype", doc_type="quyet_dinh")
            add_grant(s, a, OTHER_AGENCY, "p-legal", basis="legal_basis")
            add_grant(s, ref[OWNER_B], OTHER_AGENCY, "p-other-owner")  # B's grant says nothing about A
            now = datetime.now(timezone.utc)
            s.access.create_authorization(owner_key=a, representative_key=ref[REPRESENTATIVE],
                                          valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=30),
                                          created_by="test", reference="123/UQ")
            gone = s.access.create_authorization(owner_key=a, representative_key=ref[OWNER_B],
                                                 valid_from=now - timedelta(days=1),
                                                 valid_until=now + timedelta(days=30), created_by="test")
            s.access.revoke_authorization(gone.id)
            yield w


# case -> (principal, extra headers); expected: case -> readable records
CASES: dict[str, tuple[str, dict[str, str]]] = {
    "home_agency": ("home_agency", {}),
    "officer": ("officer", {}),
    "supervisor": ("supervisor", {}),
    "other_agency": ("other_agency", {}),
    **{f"other_agency/{p}": ("other_agency", {"Sohoa-Purpose": p}) for p in PURPOSES},
    "other_agency/p-other-owner": ("other_agency", {"Sohoa-Purpose": "p-other-owner"}),
    "other_agency/for-representative": ("other_agency", {"Sohoa-On-Behalf-Of": REPRESENTATIVE}),
    "other_agency/for-revoked-representative": ("other_agency", {"Sohoa-On-Behalf-Of": OWNER_B}),
    "citizen_a": ("citizen_a", {}),
    "citizen_b": ("citizen_b", {}),
    "representative": ("representative", {}),
    "admin_key": ("admin_key", {}),
    "desk_admin": ("desk_admin", {}),
}
EXPECTED: dict[str, set[str]] = {
    "home_agency": {"a_home", "b_home"},
    "officer": {"a_home", "b_home"},
    "supervisor": {"a_home", "b_home"},
    "other_agency": set(),
    "other_agency/p-active": {"a_home", "a_third"},
    "other_agency/p-revoked": set(),
    "other_agency/p-expired": set(),
    "other_agency/p-future": set(),
    "other_agency/p-doctype": {"a_third"},
    "other_agency/p-legal": {"a_home", "a_third"},
    "other_agency/p-none": set(),
    "other_agency/p-other-owner": {"b_home"},
    "other_agency/for-representative": {"a_home", "a_third"},
    "other_agency/for-revoked-representative": set(),
    "citizen_a": {"a_home", "a_third"},
    "citizen_b": {"b_home"},
    "representative": {"a_home", "a_third"},
    "admin_key": set(),
    "desk_admin": set(),
}
BASIS: dict[str, str] = {"home_agency": "issuer", "officer": "issuer", "supervisor": "issuer",
                         "other_agency/p-active": "consent", "other_agency/p-doctype": "consent",
                         "other_agency/p-legal": "legal_basis", "other_agency/p-other-owner": "consent",
                         "other_agency/for-representative": "representative", "citizen_a": "owner",
                         "citizen_b": "owner", "representative": "authorization"}
ENDPOINTS = ("", "/pdf", "/record", "/versions/1/pdf", "/versions/1/record")
NOT_READERS = {"admin_key", "desk_admin"}


def _body_without_instance(response) -> dict:  # noqa: ANN001
    body = response.json()
    body.pop("instance", None)
    return body


def test_matrix_is_complete():
    assert set(CASES) == set(EXPECTED)


@pytest.mark.parametrize("case", sorted(CASES))
def test_record_reads(world: World, case: str):
    principal, extra = CASES[case]
    headers = world.as_(principal, **extra)
    missing = [world.client.get(f"/v1/records/{MISSING_URI}{e}", headers=headers) for e in ENDPOINTS]
    for name, uri in world.records.items():
        for endpoint in ENDPOINTS:
            r = world.client.get(f"/v1/records/{uri}{endpoint}", headers=headers)
            if name in EXPECTED[case]:
                assert r.status_code == 200, (case, name, endpoint, r.text)
                if endpoint.endswith("pdf"):
                    assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF-")
                if endpoint == "":
                    assert r.json()["access_basis"] == BASIS[case]
                    assert r.json()["uri"] == uri
            else:
                assert r.status_code == 403, (case, name, endpoint, r.status_code)
                assert r.headers["content-type"] == "application/problem+json"
                expected_missing = next(m for m, e in zip(missing, ENDPOINTS) if e == endpoint)
                assert expected_missing.status_code == 403
                assert _body_without_instance(r) == _body_without_instance(expected_missing), (case, name, endpoint)
                code = "forbidden" if principal in NOT_READERS else "not_found_or_forbidden"
                assert r.json()["code"] == code


@pytest.mark.parametrize("case", sorted(CASES))
def test_owner_listing(world: World, case: str):
    principal, extra = CASES[case]
    for owner in ("A", "B"):
        r = world.client.get(f"/v1/owners/{world.owner_refs[owner]}/records", headers=world.as_(principal, **extra))
        if principal in NOT_READERS:
            assert r.status_code == 403 and r.json()["code"] == "forbidden"
            continue
        assert r.status_code == 200, r.text
        listed = {item["uri"] for item in r.json()["items"]}
        expected = {world.records[n] for n in EXPECTED[case] if n.startswith(owner.lower() + "_")}
        assert listed == expected, (case, owner)


def test_lookup_url_follows_the_same_rule(world: World):
    uri = world.records["a_third"]
    assert world.client.get(f"/v1/lookup/{uri}", headers=world.as_("citizen_a")).json()["uri"] == uri
    denied = world.client.get(f"/v1/lookup/{uri}", headers=world.as_("home_agency"))
    missing = world.client.get(f"/v1/lookup/{MISSING_URI}", headers=world.as_("home_agency"))
    assert denied.status_code == missing.status_code == 403
    assert _body_without_instance(denied) == _body_without_instance(missing)


def test_versions(world: World):
    uri = world.records["a_home"]
    r = world.client.get(f"/v1/records/{uri}", headers=world.as_("citizen_a"))
    assert [v["version"] for v in r.json()["versions"]] == [1, 2]
    assert r.json()["current_version"] == 2
    v1 = world.client.get(f"/v1/records/{uri}/versions/1/pdf", headers=world.as_("citizen_a"))
    v2 = world.client.get(f"/v1/records/{uri}/pdf", headers=world.as_("citizen_a"))
    assert v1.content != v2.content
    assert v2.headers["etag"] == f'"{r.json()["sha256"]}"'
    # an authorized reader learns that a version does not exist; others get the usual 403
    assert world.client.get(f"/v1/records/{uri}/versions/3/pdf", headers=world.as_("citizen_a")).json()["code"] == "version_not_found"
    assert world.client.get(f"/v1/records/{uri}/versions/3/pdf", headers=world.as_("citizen_b")).status_code == 403
    # conditional GET
    again = world.client.get(f"/v1/records/{uri}/pdf", headers={**world.as_("citizen_a"), "If-None-Match": v2.headers["etag"]})
    assert again.status_code == 304 and not again.content


def test_my_records(world: World):
    for who, names in (("citizen_a", {"a_home", "a_third"}), ("citizen_b", {"b_home"}), ("representative", set())):
        r = world.client.get("/v1/me/records", headers=world.as_(who))
        assert r.status_code == 200
        assert {i["uri"] for i in r.json()["items"]} == {world.records[n] for n in names}
    for who in ("home_agency", "officer", "admin_key"):
        assert world.client.get("/v1/me/records", headers=world.as_(who)).status_code == 403


def test_citizen_sees_who_accessed(world: World):
    uri = world.records["a_third"]
    world.client.get(f"/v1/records/{uri}/pdf", headers=world.as_("other_agency", **{"Sohoa-Purpose": "p-legal"}))
    world.client.get(f"/v1/records/{uri}/pdf", headers=world.as_("other_agency", **{"Sohoa-Purpose": "p-none"}))
    log = world.client.get("/v1/me/access-log?limit=200", headers=world.as_("citizen_a")).json()["items"]
    mine = [e for e in log if e["record_uri"] == uri and e["action"] == "record.download_pdf"
            and e["agency_code"] == OTHER_AGENCY]
    outcomes = {(e["purpose"], e["outcome"], e["basis"]) for e in mine}
    assert ("p-legal", "allowed", "legal_basis") in outcomes
    assert ("p-none", "denied", None) in outcomes
    # B's log never shows A's records
    b_log = world.client.get("/v1/me/access-log?limit=200", headers=world.as_("citizen_b")).json()["items"]
    assert all(e["record_uri"] in (world.records["b_home"], None) for e in b_log)


def test_audit_has_no_personal_numbers(world: World):
    events = world.services.audit_log.events(limit=10_000)
    assert events
    text = repr(events)
    for number in (OWNER_A, OWNER_B, REPRESENTATIVE):
        assert number not in text


@pytest.mark.parametrize("case", sorted(CASES))
def test_redirect_delivery_follows_the_same_rule(world: World, case: str):
    """``?delivery=redirect`` changes how the bytes travel, never who gets them: on this local
    store (which cannot presign) the answer is the same as the default's, status and body."""
    principal, extra = CASES[case]
    headers = world.as_(principal, **extra)
    for name, uri in world.records.items():
        for endpoint in ("/pdf", "/versions/1/record"):
            default = world.client.get(f"/v1/records/{uri}{endpoint}", headers=headers)
            redirect = world.client.get(f"/v1/records/{uri}{endpoint}?delivery=redirect", headers=headers,
                                        follow_redirects=False)
            assert redirect.status_code == default.status_code == (200 if name in EXPECTED[case] else 403), \
                (case, name, endpoint)
            assert "location" not in redirect.headers
            if default.status_code == 200:
                assert redirect.content == default.content
            else:
                assert _body_without_instance(redirect) == _body_without_instance(default)
