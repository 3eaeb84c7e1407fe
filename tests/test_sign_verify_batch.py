"""Batch verification (``signing.verify.Verifier``): the OCSP/CRL cache's freshness policy, the
same verdicts as one-shot ``verify_pdf`` whatever the order, and the pyHanko speed-ups' equivalence.

The revocation tests drive the cache's clock (``clock=``) while certificate validation itself
runs at the real time against a real dev OCSP/CRL server on loopback.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from pathlib import Path

import pytest
from asn1crypto.x509 import NameTypeAndValue
from pyhanko.pdf_utils import generic

from signing import speedups
from signing.devserver import ServerHandle, serve_dev_pki
from signing.pki import DevPki, init_dev_pki, issue_certificate, revoke_certificate
from signing.revinfo import FreshnessPolicy
from signing.signer import SignerSpec, open_signer
from signing.verify import INDETERMINATE, TOTAL_PASSED, Verifier, verify_pdf
from tests.test_sign_pades import (  # noqa: F401 - module-scoped fixtures reused here
    AGENCY,
    AGENCY_BOX,
    AGENCY_LINES,
    OFFICER,
    OFFICER_BOX,
    _append_page_content,
    _free_port,
    agency,
    dev,
    make_pdf,
    officer,
    pki,
    sign_both,
    tsa_url,
)

NOW = dt.datetime.now(dt.timezone.utc)


class FakeClock:
    """The cache's notion of "now"; starts at the real time."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def _own_pki(tmp_path: Path, name: str, **server_options: object) -> tuple[DevPki, ServerHandle]:
    port = _free_port()
    own = init_dev_pki(tmp_path / name, agency_name=AGENCY, officer_name=OFFICER,
                       base_url=f"http://127.0.0.1:{port}", passphrase=f"{name}-pass")
    return own, serve_dev_pki(own, port=port, **server_options)  # type: ignore[arg-type]


def _signed_by_new_certificate(own: DevPki, label: str, *, with_ocsp: bool = True) -> tuple[bytes, Path]:
    p12 = issue_certificate(own, label, common_name="Phạm Văn Đức", with_ocsp=with_ocsp)
    with open_signer(SignerSpec(path=str(p12), passphrase=own.passphrase)) as signer:
        return signer.sign(make_pdf(), field_name="Sig_Officer", box=OFFICER_BOX), p12


def _verdict(verifier: Verifier, pdf: bytes) -> tuple[str, str | None]:
    sig = verifier.verify(pdf).signatures[0]
    return sig.verdict, sig.sub_indication


# -- the freshness policy -------------------------------------------------------------------------

def test_freshness_window_rules():
    policy = FreshnessPolicy(max_age=dt.timedelta(minutes=5))
    hour, minute = dt.timedelta(hours=1), dt.timedelta(minutes=1)
    assert policy.reusable_window([(NOW, NOW + hour)]) == (NOW, NOW + 5 * minute)  # max age
    assert policy.reusable_window([(NOW, NOW + minute)]) == (NOW, NOW + minute)  # nextUpdate
    assert policy.reusable_window([(NOW, NOW + hour), (NOW + minute, NOW + 2 * minute)]) == (
        NOW + minute, NOW + 2 * minute)  # several CRLs: every one must be fresh
    assert policy.reusable_window([(NOW, None)]) is None  # no nextUpdate: never reused
    assert policy.reusable_window([(None, NOW + hour)]) is None
    assert policy.reusable_window([]) is None  # nothing fetched (e.g. failed OCSP status)
    # an answer produced an hour ago is only reusable until thisUpdate + max age (long past)
    assert policy.reusable_window([(NOW - hour, NOW + hour)]) == (NOW - hour, NOW - hour + 5 * minute)
    assert FreshnessPolicy(max_age=dt.timedelta(0)).reusable_window([(NOW, NOW + hour)]) is None
    with pytest.raises(ValueError):
        FreshnessPolicy(max_age=dt.timedelta(seconds=-1))


def test_revocation_after_a_cached_good_answer_is_seen_once_the_answer_is_stale(tmp_path):
    own, server = _own_pki(tmp_path, "ocsp")
    clock = FakeClock()
    try:
        signed, p12 = _signed_by_new_certificate(own, "later-revoked")
        policy = FreshnessPolicy(max_age=dt.timedelta(minutes=5))
        with Verifier([own.root_pem()], freshness=policy, clock=clock) as verifier:
            assert _verdict(verifier, signed) == (TOTAL_PASSED, None)
            assert verifier.backend.stats["ocsp_misses"] == 1
            revoke_certificate(own, p12, when=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
            # the cached "good" answer is 30 s old (dev responder's thisUpdate): still within policy
            clock.advance(minutes=1)
            assert _verdict(verifier, signed) == (TOTAL_PASSED, None)
            assert verifier.backend.stats == {"ocsp_hits": 1, "ocsp_misses": 1, "crl_hits": 0,
                                              "crl_misses": 0}
            # thisUpdate + 5 min has passed: the responder is asked again and says "revoked"
            clock.advance(minutes=4, seconds=1)
            assert _verdict(verifier, signed) == (INDETERMINATE, "REVOKED_NO_POE")
            assert verifier.backend.stats["ocsp_misses"] == 2
        # a fresh one-shot verification agrees
        assert verify_pdf(signed, [own.root_pem()]).signatures[0].sub_indication == "REVOKED_NO_POE"
    finally:
        server.stop()


def test_next_update_bounds_reuse_even_with_a_long_max_age(tmp_path):
    own, server = _own_pki(tmp_path, "short", ocsp_validity=dt.timedelta(minutes=1))
    clock = FakeClock()
    try:
        signed, p12 = _signed_by_new_certificate(own, "short-lived-answers")
        policy = FreshnessPolicy(max_age=dt.timedelta(days=1))
        with Verifier([own.root_pem()], freshness=policy, clock=clock) as verifier:
            assert _verdict(verifier, signed) == (TOTAL_PASSED, None)
            revoke_certificate(own, p12, when=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
            clock.advance(seconds=30)
            assert _verdict(verifier, signed) == (TOTAL_PASSED, None)  # before nextUpdate
            clock.advance(seconds=31)  # past the answer's nextUpdate
            assert _verdict(verifier, signed) == (INDETERMINATE, "REVOKED_NO_POE")
            assert verifier.backend.stats["ocsp_hits"] == 1
            assert verifier.backend.stats["ocsp_misses"] == 2
    finally:
        server.stop()


def test_answer_without_next_update_is_never_reused(tmp_path):
    own, server = _own_pki(tmp_path, "nonext", ocsp_validity=None)
    try:
        signed, _ = _signed_by_new_certificate(own, "no-next-update")
        with Verifier([own.root_pem()]) as verifier:
            for _ in range(3):
                assert _verdict(verifier, signed) == (TOTAL_PASSED, None)
            assert verifier.backend.stats["ocsp_hits"] == 0
            assert verifier.backend.stats["ocsp_misses"] == 3
    finally:
        server.stop()


def test_crl_answers_follow_the_same_policy(tmp_path):
    own, server = _own_pki(tmp_path, "crl")
    clock = FakeClock()
    try:
        signed, p12 = _signed_by_new_certificate(own, "crl-only", with_ocsp=False)
        policy = FreshnessPolicy(max_age=dt.timedelta(minutes=5))
        with Verifier([own.root_pem()], freshness=policy, clock=clock) as verifier:
            assert _verdict(verifier, signed) == (TOTAL_PASSED, None)
            assert verifier.backend.stats["crl_misses"] == 1
            assert verifier.backend.stats["ocsp_misses"] == 0
            revoke_certificate(own, p12, when=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
            clock.advance(minutes=2)  # the CRL says thisUpdate = 1 min ago: still fresh
            assert _verdict(verifier, signed) == (TOTAL_PASSED, None)
            assert verifier.backend.stats["crl_hits"] >= 1
            clock.advance(minutes=3)
            assert _verdict(verifier, signed) == (INDETERMINATE, "REVOKED_NO_POE")
            assert verifier.backend.stats["crl_misses"] == 2
    finally:
        server.stop()


def test_unreachable_responder_is_not_cached(tmp_path):
    port = _free_port()
    own = init_dev_pki(tmp_path / "late", agency_name=AGENCY, officer_name=OFFICER,
                       base_url=f"http://127.0.0.1:{port}", passphrase="late-pass")
    signed, _ = _signed_by_new_certificate(own, "server-starts-late")
    with Verifier([own.root_pem()], revocation="hard") as verifier:
        assert _verdict(verifier, signed) == (INDETERMINATE, "TRY_LATER")
        server = serve_dev_pki(own, port=port)
        try:
            assert _verdict(verifier, signed) == (TOTAL_PASSED, None)  # asked again at once
        finally:
            server.stop()


# -- same verdicts as one-shot verification, in any order -----------------------------------------

def test_batch_verdicts_equal_one_shot_verdicts_in_any_order(officer, agency, pki, tsa_url, tmp_path):
    other = init_dev_pki(tmp_path / "other", agency_name="Cơ quan khác", officer_name="Người khác",
                         passphrase="other-pass")
    with open_signer(SignerSpec(path=str(other.agency_p12), passphrase=other.passphrase)) as s:
        untrusted = s.sign(make_pdf(), field_name="Sig_Agency", box=AGENCY_BOX)
    both_bt = sign_both(officer, agency, make_pdf(), "B-T", tsa_url)
    good_bb = agency.sign(make_pdf(), field_name="Sig_Agency", box=AGENCY_BOX, lines=AGENCY_LINES)
    docs = {
        "B-B": good_bb,
        "B-T two signatures": both_bt,
        "B-LTA": sign_both(officer, agency, make_pdf(), "B-LTA", tsa_url),
        "tampered": good_bb.replace(b"Trang 1", b"Trang 7"),
        "modified after signing": _append_page_content(both_bt),
        "untrusted root": untrusted,
        "unsigned": make_pdf(),
        "not a PDF": b"%PDF-1.7 garbage",
    }
    roots = [pki.root_pem()]
    expected = {name: verify_pdf(pdf, roots).model_dump() for name, pdf in docs.items()}
    assert expected["B-LTA"]["verdict"] == TOTAL_PASSED
    assert expected["tampered"]["signatures"][0]["sub_indication"] == "HASH_FAILURE"
    assert expected["untrusted root"]["signatures"][0]["sub_indication"] == "NO_CERTIFICATE_CHAIN_FOUND"
    names = list(docs)
    with Verifier(roots) as verifier:
        for order in (names, names[::-1], random.Random(7).sample(names, len(names))):
            got = dict(zip(order, verifier.verify_many(docs[n] for n in order)))
            assert {n: r.model_dump() for n, r in got.items()} == expected
        assert verifier.backend.stats["ocsp_hits"] > 0  # answers were reused across documents
    with pytest.raises(RuntimeError, match="closed"):
        verifier.verify(good_bb)
    verifier.close()  # idempotent


# -- the speed-ups behave exactly like the originals ----------------------------------------------

def _read(reader, data: bytes) -> tuple:
    stream = io.BytesIO(b"xx" + data)
    stream.seek(2)
    try:
        value = reader(stream)
    except Exception as exc:  # noqa: BLE001 - the error type and text are what is compared
        return ("error", type(exc), str(exc))
    return ("ok", type(value), bytes(value) if isinstance(value, bytes) else str(value), stream.tell())


def test_fast_hex_strings_match_pyhanko():
    rnd = random.Random(11)
    cases = [b"<>", b"<a>", b"<ab>", b"<4142 43\n44>rest", b"<41%comment\n42>x", b"<4x>", b"<41",
             b"< 4 1 >", b"<FEFF00410042>", b"<41\x0042>", b"<" + b"0f" * 40000 + b">tail"]
    for _ in range(200):
        noise = bytes(rnd.choice(b"0123456789abcdefABCDEF \n\r\t") for _ in range(rnd.randint(0, 300)))
        cases.append(b"<" + noise + b"ab" * rnd.randint(0, 40000) + b">zz")
    with speedups.fast_verification():
        for case in cases:
            assert _read(speedups.read_hex_string, case) == _read(speedups.original_read_hex_string, case)
    # outside the block the original runs, even through the installed replacement
    assert generic.read_hex_string_from_stream is speedups.read_hex_string
    assert _read(speedups.read_hex_string, b"<4x>")[0] == "error"


def test_memoised_name_preparation_matches_asn1crypto():
    samples = ["Uỷ ban nhân dân phường Bến Nghé", "  NGUYỄN   Thị  Lan ", "sohoa Dev Root CA",
               "Cộng hoà\u00ad xã hội", "ﬁle\u200b", "Ban Cơ yếu Chính phủ", ""]
    with speedups.fast_verification():
        for text in samples * 2:
            assert speedups.ldap_string_prep(None, text) == speedups.original_ldap_string_prep(text)
        assert NameTypeAndValue._ldap_string_prep is speedups.ldap_string_prep


# -- `sohoa verify` with several files (one Verifier) ---------------------------------------------

def test_cli_verify_several_files(sohoa_home, tmp_path):
    import json

    from typer.testing import CliRunner

    import cli
    from ingest.settings import load_settings
    from signing.pki import load_dev_pki
    from tests.test_api_support import init_home

    init_home(sohoa_home)
    home_pki = load_dev_pki(load_settings().pki_dir)
    with open_signer(SignerSpec(path=str(home_pki.agency_p12), passphrase=home_pki.passphrase)) as s:
        good = [s.sign(make_pdf(text=f"Hồ sơ {i}"), field_name="Sig_Agency", box=AGENCY_BOX)
                for i in range(2)]
    files = []
    for name, data in (("a.pdf", good[0]), ("b.pdf", good[1]),
                       ("tampered.pdf", good[0].replace(b"Trang 1", b"Trang 9"))):
        files.append(tmp_path / name)
        files[-1].write_bytes(data)
    runner = CliRunner()

    ok = runner.invoke(cli.app, ["verify", str(files[0]), str(files[1]), "--json"])
    assert ok.exit_code == 0, ok.output
    lines = [json.loads(line) for line in ok.stdout.splitlines() if line.strip()]
    assert [(x["file"], x["verdict"]) for x in lines] == [("a.pdf", "TOTAL_PASSED"), ("b.pdf", "TOTAL_PASSED")]
    assert all(x["trusted"] and x["level"] == "B-B" and "pdfa" in x for x in lines)

    mixed = runner.invoke(cli.app, ["verify", *map(str, files), "--json"])
    assert mixed.exit_code == 1, mixed.output  # one document does not pass
    verdicts = {json.loads(line)["file"]: json.loads(line)["sub_indication"]
                for line in mixed.stdout.splitlines() if line.strip()}
    assert verdicts == {"a.pdf": None, "b.pdf": None, "tampered.pdf": "HASH_FAILURE"}

    missing = runner.invoke(cli.app, ["verify", str(files[0]), str(tmp_path / "nope.pdf")])
    assert missing.exit_code == 3, missing.output  # unreadable input, the readable one still reported
    assert "a.pdf" in missing.stdout and "TOTAL_PASSED" in missing.stdout
    assert "nope.pdf" in missing.output


# -- the batch signer checks revocation before B-LT with the same freshness policy ---------------

def test_long_lived_signer_sees_a_revocation_once_its_cached_answer_is_stale(pki, tsa_url):
    from signing.signer import SigningError

    p12 = issue_certificate(pki, "revoked-while-signing", common_name="Võ Thị Hoa")
    no_reuse = FreshnessPolicy(max_age=dt.timedelta(0))
    with open_signer(SignerSpec(path=str(p12), passphrase=pki.passphrase),
                     revinfo_freshness=no_reuse) as signer:
        first = signer.sign(make_pdf(), field_name="Sig_Officer", box=OFFICER_BOX, level="B-LT",
                            timestamp_url=tsa_url)
        revoke_certificate(pki, p12, when=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
        with pytest.raises(SigningError):
            signer.sign(make_pdf(), field_name="Sig_Officer", box=OFFICER_BOX, level="B-LT",
                        timestamp_url=tsa_url)
    assert first  # signed while the certificate was good
    with open_signer(SignerSpec(path=str(pki.agency_p12), passphrase=pki.passphrase)) as signer:
        for _ in range(2):  # default policy: the second signature reuses the first one's answers
            signer.sign(make_pdf(), field_name="Sig_Agency", box=AGENCY_BOX, level="B-LT",
                        timestamp_url=tsa_url)
        assert signer._revinfo.stats["ocsp_hits"] > 0
