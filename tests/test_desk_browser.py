"""The reception desk driven like an officer would, in headless Chromium (issue #10 "done when").

log in -> new dossier (ID checked while typing) -> upload two scans -> progress -> review
(type, field highlight, page order) -> correct a field -> confirm -> receipt PDF (read back with
poppler and zbar) -> the stored record in the repository; then a restart that must not lose a
received scan, the supervisor's queue and the English pages. Screenshots: test-artifacts/desk/.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOHOA = str(Path(sys.executable).parent / "sohoa")
SHOTS = ROOT / "test-artifacts" / "desk"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OWNER = "079203012345"
SCANS = [ROOT / "samples" / "giay_khai_sinh.jpg", ROOT / "samples" / "quyet_dinh.jpg"]
OCR_WAIT_MS = 180_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``sohoa serve`` in a subprocess on a free loopback port."""

    def __init__(self, env: dict, log: Path) -> None:
        self.env, self.log = env, log
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen([SOHOA, "serve", "--port", str(self.port), "--log-level", "warning"],
                                     env=self.env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


LAN = "Lê Thị Lan"  # not the configured officer's name: the signature must be lan's own


def _initialize(home: Path) -> None:
    """What `sohoa init` and `sohoa users add --full-name` do on a development install (each user
    gets a personal certificate from the dev CA), in this process (no second interpreter start)."""
    import cli
    from ingest.configs import repository_config
    from ingest.officers import issue_dev_key
    from ingest.settings import load_settings
    from repository import Repository
    from repository.access import AccessStore

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOHOA_HOME", str(home))
        cli.init(if_missing=False, force=False, agency_name=None, agency_code=None, officer=None)
        settings = load_settings()
        repo = Repository.open(repository_config(settings))
        try:
            access = AccessStore(repo.engine)
            for login, role, password, full_name in (("lan", "officer", "mat-khau-lan-1", LAN),
                                                     ("hoa", "supervisor", "mat-khau-hoa-1", "Trần Thị Hoà")):
                key = issue_dev_key(settings, login, full_name)
                access.add_user(login, role, password, full_name=full_name, signing_kind=key.kind,
                                signing_ref=key.ref)
        finally:
            repo.close()


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    home = tmp_path_factory.mktemp("desk") / "home"
    _initialize(home)
    env = dict(os.environ, SOHOA_HOME=str(home), OMP_THREAD_LIMIT="1",
               SOHOA_LOOKUP_BASE_URL="http://127.0.0.1:8000/v1/lookup/")
    server = Server(env, home.parent / "server.log")
    server.start()
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield {"server": server, "env": env, "home": home}
    server.stop()


def _stored(home: Path, uri: str):
    """The stored record's PDF and structured record, and the signature report."""
    from ingest.configs import repository_config, trust_roots
    from ingest.settings import load_settings
    from repository import Repository
    from signing.verify import verify_pdf

    settings = load_settings(home=home)
    repo = Repository.open(repository_config(settings))
    try:
        got = repo.get(uri)
    finally:
        repo.close()
    return got.pdf, got.record_json, verify_pdf(got.pdf, trust_roots(settings))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _login(browser, base: str, user: str, password: str, lang: str = "vi"):
    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True,
                                  locale="vi-VN" if lang == "vi" else "en-US")
    page = context.new_page()
    page.goto(base + "/desk")
    assert "/login" in page.url
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/desk$"))
    return context, page


def _shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def _labelled(page) -> None:
    """Every visible form control has a label (accessibility)."""
    unlabelled = page.evaluate("""() => Array.from(document.querySelectorAll(
        'input:not([type=hidden]), select, textarea')).filter(e => !e.closest('.default-submit')
        && e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.name || e.id)""")
    assert unlabelled == []


def test_officer_receives_reviews_confirms_and_prints(desk, browser, tmp_path):
    base = desk["server"].url
    context, page = _login(browser, base, "lan", "mat-khau-lan-1")
    assert page.locator("h1").inner_text() == "Hồ sơ tiếp nhận hôm nay"
    _shot(page, "01-queue")

    # ---- new dossier: the ID is checked while typing (JS mirror of the server's validator)
    page.click("#new-dossier")
    page.fill("#owner_id", "003203012345")
    assert "Mã tỉnh" in page.locator("#owner-check").inner_text()
    assert page.get_attribute("#owner_id", "aria-invalid") == "true"
    page.fill("#owner_id", OWNER)
    assert page.locator("#owner-check").inner_text() == "Số định danh hợp lệ"
    page.fill("#dossier_code", "HS-2026-0042")
    page.set_input_files("#files", [str(p) for p in SCANS])
    assert page.locator("#file-list li").count() == 2
    _labelled(page)
    _shot(page, "02-new-dossier")

    # ---- upload -> progress -> review
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/desk/drafts/[0-9A-Z]{26}$"))
    draft_url = page.url
    draft_id = draft_url.rsplit("/", 1)[1]
    assert OWNER not in draft_url
    if page.locator("#progress").count():
        _shot(page, "03-progress")
    page.wait_for_selector("#review-form", timeout=OCR_WAIT_MS)
    scans = sorted((desk["home"] / "desk" / "drafts" / draft_id / "uploads").iterdir())
    assert [p.read_bytes() for p in scans] == [p.read_bytes() for p in SCANS]  # kept as uploaded
    assert page.locator(".thumb").count() == 2
    _labelled(page)
    _shot(page, "04-review")

    # ---- document type: the officer picks it (two different papers read as one document)
    page.select_option("#doc_type", "giay_khai_sinh")
    page.click("#change-type")
    page.wait_for_selector("#f-ho_ten")
    assert page.locator("#doc_type").input_value() == "giay_khai_sinh"

    # ---- focusing a field highlights where it was read
    page.focus("#f-ho_ten")
    highlight = page.locator("#highlight")
    highlight.wait_for(state="visible")
    box = highlight.bounding_box()
    view = page.locator("#page-view").bounding_box()
    assert box and view and box["width"] > 20 and view["x"] <= box["x"] <= view["x"] + view["width"]
    _shot(page, "05-field-highlight")

    # ---- page order: move page 2 up, then back down (no OCR: only the arrangement changes)
    page.click("button[value='up:1']")
    page.wait_for_selector("#review-form")
    order = page.locator("input[name=page]").evaluate_all("els => els.map(e => e.value)")
    assert order == ["1:0", "0:0"]
    page.click("button[value='down:0']")
    page.wait_for_selector("#review-form")
    assert page.locator("input[name=page]").evaluate_all("els => els.map(e => e.value)") == ["0:0", "1:0"]
    page.click("button[value='rotate:1']")
    page.wait_for_selector("#review-form")
    assert page.locator("input[name=page]").nth(1).input_value() == "1:90"
    thumb = page.locator(".thumb img").nth(1)
    assert int(thumb.get_attribute("width")) > int(thumb.get_attribute("height"))  # now landscape
    page.click("button[value='delete:1']")
    page.wait_for_selector("#review-form")
    assert page.locator(".thumb").count() == 1
    page.click("button[value='restore']")
    page.wait_for_selector("#review-form")
    assert page.locator("input[name=page]").evaluate_all("els => els.map(e => e.value)") == ["0:0", "1:0"]

    # ---- a wrong value is flagged and blocks confirming; the officer corrects it
    page.fill("#f-so_dinh_danh", "082323426O76")
    page.click("#confirm")
    page.wait_for_selector(".alert.error")
    assert page.get_attribute("#f-so_dinh_danh", "aria-invalid") == "true"
    _shot(page, "06-invalid-field")
    assert page.evaluate("document.activeElement.id") == "f-so_dinh_danh"  # focus on the problem
    page.fill("#f-so_dinh_danh", "082 323 426 576")
    page.fill("#f-ho_ten", "Trần Thị Thanh Nhung")
    page.fill("#f-so_van_ban", "189/2023/TLKS")
    page.keyboard.press("Enter")  # Enter saves the draft (never a page button)
    page.wait_for_selector(".alert.ok")
    assert page.locator("input[name=page]").count() == 2
    assert page.locator("#f-ho_ten").input_value() == "Trần Thị Thanh Nhung"
    assert page.locator("#f-so_dinh_danh").input_value() == "082 323 426 576"

    # ---- confirm: convert, sign, store; the result page shows URI and signature verdict
    page.click("#confirm")
    page.wait_for_selector("#outcome", timeout=120_000)
    uri = page.locator("#record-uri").inner_text().strip()
    assert uri.startswith("000.00.12.H29.giay_khai_sinh.")
    assert page.get_attribute("#verdict", "data-verdict") == "TOTAL_PASSED"
    _shot(page, "07-stored")

    # ---- the receipt: A5 PDF, Vietnamese text, QR of the lookup address (external tools)
    with page.expect_download() as download:
        page.click("#receipt-link")
    receipt = tmp_path / "receipt.pdf"
    download.value.save_as(receipt)
    info = subprocess.run(["pdfinfo", str(receipt)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Page size:\s+419\.\d+ x 595\.\d+ pts", info)
    text = subprocess.run(["pdftotext", "-raw", str(receipt), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "PHIẾU XÁC NHẬN SỐ HOÁ VĂN BẢN GIẤY" in text and "Giấy khai sinh" in text
    assert LAN in text  # the officer who confirmed and signed
    assert uri in "".join(text.split())
    assert OWNER not in text and "079******345" in text
    if shutil.which("zbarimg"):
        subprocess.run(["pdftoppm", "-r", "150", "-png", str(receipt), str(tmp_path / "r")], check=True)
        qr = subprocess.run(["zbarimg", "-q", "--raw", str(tmp_path / "r-1.png")],
                            capture_output=True, text=True).stdout.strip()
        assert qr == "http://127.0.0.1:8000/v1/lookup/" + uri

    # ---- the stored record, fetched back from the repository and checked
    with ThreadPoolExecutor(1) as pool:  # verify_pdf runs asyncio: not on Playwright's loop thread
        pdf, record_bytes, report = pool.submit(_stored, desk["home"], uri).result()
    record = json.loads(record_bytes)
    assert record["doc_type"] == "giay_khai_sinh"
    assert record["fields"]["ho_ten"]["value"] == "Trần Thị Thanh Nhung"
    assert record["fields"]["ho_ten"]["confidence"] == 1.0  # confirmed by a person
    assert record["fields"]["so_dinh_danh"]["value"] == "082323426576"
    assert record["fields"]["so_van_ban"]["value"] == "189/2023/TLKS"
    assert record["dossier_code"] == "HS-2026-0042"
    assert len(record["pages"]) == 2
    assert OWNER.encode() not in record_bytes
    assert report.passed and len(report.signatures) == 2, report.message_en
    assert [s.signer for s in report.signatures] == [LAN, "Uỷ ban nhân dân phường Bến Nghé"]  # her own key
    assert record["conversion"]["officer_name"] == LAN
    out = tmp_path / "record.pdf"
    out.write_bytes(pdf)
    pages = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Pages:\s+2\n", pages)

    # ---- today's queue shows it stored; English on request, remembered
    page.goto(base + "/desk")
    assert page.locator(".badge.confirmed").count() >= 1
    page.click("#lang-switch")
    page.wait_for_selector("html[lang=en]")
    assert page.locator("h1").inner_text() == "Dossiers received today"
    _shot(page, "08-queue-en")
    page.goto(draft_url)
    assert page.locator("h1").inner_text() == "Stored in the repository"
    context.close()


def _low_resolution_scan(path: Path) -> Path:
    """The decision scan at 100 dpi (half size): the quality gate must ask for a rescan."""
    from PIL import Image

    with Image.open(SCANS[1]) as image:
        image.resize((image.width // 2, image.height // 2)).save(path, quality=85, dpi=(100, 100))
    return path


def test_received_scans_survive_a_restart_and_reach_the_supervisor(desk, browser, tmp_path):
    server: Server = desk["server"]
    context, page = _login(browser, server.url, "lan", "mat-khau-lan-1")
    page.goto(server.url + "/desk/new")
    page.fill("#owner_id", "001185000123")
    page.set_input_files("#files", [str(_low_resolution_scan(tmp_path / "quyet_dinh_100dpi.jpg"))])
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/desk/drafts/[0-9A-Z]{26}$"))
    draft_url = page.url
    context.close()

    server.stop()  # possibly in the middle of OCR
    server.start()

    context, page = _login(browser, server.url, "lan", "mat-khau-lan-1")
    page.goto(draft_url)
    page.wait_for_selector("#review-form", timeout=OCR_WAIT_MS)
    assert page.locator(".thumb").count() == 1
    quality = page.locator("#quality li").all_inner_texts()
    assert any(q.startswith("Trang 1: Độ phân giải quá thấp") for q in quality), quality
    assert page.locator(".thumb.warn").count() == 1
    _shot(page, "09-quality-warning")
    context.close()

    context, page = _login(browser, server.url, "hoa", "mat-khau-hoa-1")
    page.goto(server.url + "/desk/review-queue")
    rows = page.locator("table.drafts tbody tr")
    assert rows.count() >= 1
    assert "001******123" in page.locator("table.drafts").inner_text()
    assert "001185000123" not in page.content()
    _shot(page, "10-supervisor-queue")
    page.locator("table.drafts tbody tr a").first.click()
    page.wait_for_selector("#review-form")  # a supervisor can finish another officer's document
    context.close()


def test_js_id_check_mirrors_the_server_validator(desk, browser):
    from ocr.validators import validate_personal_id

    context, page = _login(browser, desk["server"].url, "lan", "mat-khau-lan-1")
    page.goto(desk["server"].url + "/desk/new")
    samples = ["079203012345", "001085000001", "003203012345", "079903012345", "079299012345",
               "096100000000", "0792030123", "07920301234X", "0100109106", "048300000001"]
    for value in samples:
        verdict = page.evaluate(
            "v => window.sohoaCheckOwnerId(v, document.querySelector('#owner_id').dataset.provinces"
            ".split(','), Number(document.querySelector('#owner_id').dataset.year))", value)
        if len(value) == 12 and value.isdigit():
            assert (verdict["state"] == "ok") == (validate_personal_id(value) is None), value
        elif len(value) == 10 and value.isdigit():
            assert verdict["key"] == "okOrg"
        else:
            assert verdict["state"] != "ok", value
    context.close()


def test_pages_work_without_javascript(desk, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1366, "height": 768}, java_script_enabled=False,
                                  locale="vi-VN")
    page = context.new_page()
    base = desk["server"].url
    page.goto(base + "/login?next=/desk/new")
    page.fill("#username", "lan")
    page.fill("#password", "mat-khau-lan-1")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/desk/new$"))
    notes = tmp_path / "notes.txt"
    notes.write_text("không phải bản quét", "utf-8")
    page.fill("#owner_id", "003203012345")  # no province 003: refused by the server
    page.set_input_files("#files", [str(notes)])
    page.click("#submit")
    page.wait_for_selector("#error")
    assert page.locator("#error").inner_text() == "Số định danh / mã số chủ sở hữu không hợp lệ"
    assert page.locator("#owner_id").input_value() == "003203012345"  # kept for correcting
    page.fill("#owner_id", OWNER)
    page.set_input_files("#files", [str(notes)])
    page.click("#submit")
    page.wait_for_selector("#error")
    assert page.locator("#error").inner_text() == (
        "Tệp không phải ảnh quét hoặc PDF được hỗ trợ (notes.txt)")
    assert "/desk/drafts" in page.url and OWNER not in page.url  # a POST: the ID stays out of URLs
    _shot(page, "11-no-javascript-error")
    context.close()
