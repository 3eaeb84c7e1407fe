"""ocr.perspective: the sheet in a phone photo is found (true corners known) and warped to A4."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from ocr.perspective import find_page_corners, sheet_aspect, warp_page
from samples.degrade import KINDS, degrade, phone_photo_corners
from samples.generator import render_document

A4 = 210 / 297


@pytest.fixture(scope="module")
def doc():
    return render_document("quyet_dinh", 1, dpi=200)


# 7, 22, 31, 30000, 30006: a shadow cut the brightness mask, a bright table merged with the sheet,
# or an ill-conditioned focal-length estimate squashed the sheet to a landscape shape
@pytest.mark.parametrize("seed", [7, 22, 31, 30000, 30006, 3, 12])
def test_sheet_corners_and_aspect_on_generated_photos(doc, seed: int) -> None:
    photo, _ = degrade(doc.image, "phone_photo", seed, dpi=200)
    truth = phone_photo_corners(doc.image, seed, dpi=200)
    found = find_page_corners(photo)
    assert found is not None
    sheet_height = float(np.linalg.norm(truth[3] - truth[0]))
    assert np.abs(found - truth).max() < 0.01 * sheet_height
    flat = warp_page(photo, found)
    assert flat.shape[1] / flat.shape[0] == pytest.approx(A4, rel=0.01)
    # nothing of the sheet is shrunk: the flat page is at least as tall as its longest side in the photo
    assert flat.shape[0] >= 0.98 * max(np.linalg.norm(truth[3] - truth[0]), np.linalg.norm(truth[2] - truth[1]))


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "phone_photo"])
def test_flat_scans_have_no_sheet_to_find(doc, kind: str) -> None:
    image, _ = degrade(doc.image, kind, seed=5, dpi=200)
    assert find_page_corners(image) is None


def test_page_cut_by_the_frame_is_not_warped(doc) -> None:
    photo, _ = degrade(doc.image, "phone_photo", 3, dpi=200)
    truth = phone_photo_corners(doc.image, 3, dpi=200)
    bottom = int(max(truth[2][1], truth[3][1]))
    assert find_page_corners(photo[: bottom - 200]) is None  # the sheet's bottom edge is out of the picture


def test_aspect_of_a_projected_a4_sheet() -> None:
    """A4 seen by a pinhole camera (focal 0.8 x long side, tilted 25 deg): aspect recovered."""
    width, height = 3000, 4000
    focal = 0.8 * height
    tilt = np.radians(25.0)
    rot = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    sheet = np.array([[-105, -148.5, 0], [105, -148.5, 0], [105, 148.5, 0], [-105, 148.5, 0]]) @ rot.T
    sheet[:, 2] += 420.0
    corners = focal * sheet[:, :2] / sheet[:, 2:3] + np.array([width / 2, height / 2])
    assert sheet_aspect(corners.astype(np.float32), width, height) == pytest.approx(A4, rel=0.005)
    naive = np.linalg.norm(corners[1] - corners[0]) / np.linalg.norm(corners[3] - corners[0])
    assert abs(naive / A4 - 1) > 0.1  # the foreshortening the estimate corrects


def test_uniform_picture_has_no_sheet() -> None:
    assert find_page_corners(np.full((1200, 900, 3), 128, np.uint8)) is None
    noise = np.random.default_rng(0).integers(0, 255, (1200, 900), dtype=np.uint8)
    assert find_page_corners(cv2.GaussianBlur(noise, (0, 0), 3)) is None
