"""samples.degrade: deterministic, realistic degradations that keep the page readable."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from samples.degrade import KINDS, degrade
from samples.generator import render_document


@pytest.fixture(scope="module")
def page():
    return render_document("xac_nhan_cu_tru", 2, dpi=150, seal=True)


def test_kinds_are_the_documented_set() -> None:
    assert set(KINDS) == {"clean_300", "scan_200", "bad_150", "rotated", "phone_photo", "faded", "red_seal",
                          "punched"}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_deterministic_and_returns_its_dpi(page, kind: str) -> None:
    first, dpi = degrade(page.image, kind, seed=4, dpi=page.dpi)
    again, dpi_again = degrade(page.image, kind, seed=4, dpi=page.dpi)
    assert dpi == dpi_again and np.array_equal(first, again)
    assert first.dtype == np.uint8 and first.ndim in (2, 3)
    if kind in ("scan_200", "phone_photo"):
        other, _ = degrade(page.image, kind, seed=5, dpi=page.dpi)
        assert first.shape != other.shape or not np.array_equal(first, other)
    expected = {"clean_300": 300, "scan_200": 200, "bad_150": 150, "rotated": 300, "faded": 300, "red_seal": 300,
                "punched": 300}
    if kind in expected:
        assert dpi == expected[kind]
        long_side = max(first.shape[:2])
        assert long_side == pytest.approx(297 / 25.4 * dpi, rel=0.12)  # A4 at that resolution (+ skew margin)
    else:
        assert 120 <= dpi <= 320


def test_rotated_turns_the_page_and_phone_photo_has_background(page) -> None:
    for seed in (1, 2):
        rotated, _ = degrade(page.image, "rotated", seed=seed, dpi=page.dpi)
        gray = rotated if rotated.ndim == 2 else cv2.cvtColor(rotated, cv2.COLOR_BGR2GRAY)
        height, width = gray.shape
        # 90/270: an A4 portrait page becomes landscape; 180: the header block ends up at the bottom
        band = height // 6
        assert width > height or gray[-band:].mean() < gray[:band].mean()
    photo, _ = degrade(page.image, "phone_photo", seed=1, dpi=page.dpi)
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    assert gray[:10, :10].mean() < 150 and gray[-10:, -10:].mean() < 150  # table around the sheet
    assert gray[gray.shape[0] // 2 - 50:gray.shape[0] // 2 + 50].max() > 170  # the sheet itself


def test_faded_lowers_contrast_and_red_seal_keeps_red(page) -> None:
    faded, _ = degrade(page.image, "faded", seed=1, dpi=page.dpi)
    assert cv2.cvtColor(faded, cv2.COLOR_BGR2GRAY).min() > 60
    sealed, _ = degrade(page.image, "red_seal", seed=1, dpi=page.dpi)
    b, g, r = (sealed[:, :, i].astype(int) for i in range(3))
    assert ((r - g > 100) & (r - b > 100)).sum() > 300


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade(np.zeros((10, 10), np.uint8), "coffee_stain", seed=1)
    with pytest.raises(ValueError):
        degrade(np.zeros((10, 10), np.float64), "faded", seed=1)


def test_punched_page_has_two_filing_holes_in_the_left_margin() -> None:
    doc = render_document("quyet_dinh", 3, dpi=300)
    punched, dpi = degrade(doc.image, "punched", seed=2, dpi=300)
    gray = cv2.cvtColor(punched, cv2.COLOR_BGR2GRAY)
    margin = gray[:, int(5 / 25.4 * dpi):int(20 / 25.4 * dpi)] < 80  # 5-20 mm from the left edge
    count, _, stats, _ = cv2.connectedComponentsWithStats(margin.astype(np.uint8), connectivity=8)
    diameter = 6 / 25.4 * dpi
    holes = [s for s in stats[1:]  # round 6 mm blobs (not the scanner lid's band)
             if abs(s[cv2.CC_STAT_WIDTH] / diameter - 1) < 0.25 and abs(s[cv2.CC_STAT_HEIGHT] / diameter - 1) < 0.25]
    assert len(holes) == 2
    assert abs(holes[1][cv2.CC_STAT_TOP] - holes[0][cv2.CC_STAT_TOP]) == pytest.approx(80 / 25.4 * dpi, rel=0.03)
