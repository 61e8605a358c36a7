"""The numpy-level API: compress, reconstruct, size_report; and the demo."""


import numpy as np
import pytest

from conftest import FIXTURES, gradient_image, noise_image
from pil_kmq import compress, reconstruct, size_report
from pil_kmq.quantize.nearest import nearest
from pil_kmq.demo import main as demo_main


def test_compress_returns_labels_and_uint8_centroids():
    array = np.asarray(gradient_image(30, 20))
    labels, centroids = compress(array, 5)
    assert labels.shape == (20, 30) and labels.dtype == np.uint8
    assert centroids.shape == (5, 3) and centroids.dtype == np.uint8
    assert labels.max() < 5


def test_every_pixel_gets_its_exactly_nearest_centroid():
    array = np.asarray(noise_image(25, 17, seed=4))
    labels, centroids = compress(array, 7)
    pixels = array.reshape(-1, 3).astype(np.int64)
    distances = ((pixels[:, None, :] - centroids[None, :, :].astype(np.int64)) ** 2).sum(axis=2)
    assert np.array_equal(labels.reshape(-1), distances.argmin(axis=1))


def test_nearest_breaks_ties_to_the_lowest_index():
    codebook = np.array([[10, 10, 10], [0, 0, 0], [20, 20, 20]], np.uint8)
    assert list(nearest(np.array([[5, 5, 5], [15, 15, 15]], np.uint8), codebook)) == [0, 0]


def test_centroids_are_the_means_of_their_clusters():
    """Two well separated blobs: k-means must find their means."""
    rng = np.random.default_rng(0)
    dark = rng.integers(10, 31, (50, 3))
    light = rng.integers(200, 221, (50, 3))
    array = np.vstack([dark, light]).astype(np.uint8).reshape(10, 10, 3)
    labels, centroids = compress(array, 2)
    for cluster in range(2):
        members = array.reshape(-1, 3)[labels.reshape(-1) == cluster]
        assert np.array_equal(centroids[cluster], np.rint(members.mean(axis=0)).astype(np.uint8))


def test_reconstruct_looks_up_the_codebook():
    labels = np.array([[0, 1], [1, 0]], np.uint8)
    centroids = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    assert reconstruct(labels, centroids).tolist() == [[[1, 2, 3], [4, 5, 6]], [[4, 5, 6], [1, 2, 3]]]
    assert reconstruct(labels, centroids, (4, 3)).shape == (4, 3)
    grey = reconstruct(labels, np.array([[9], [7]], np.uint8))
    assert grey.tolist() == [[9, 7], [7, 9]]


def test_grey_arrays_are_accepted_as_2d():
    array = np.asarray(gradient_image(16, 16, "L"))
    labels, centroids = compress(array, 4)
    assert centroids.shape == (4, 1)
    assert reconstruct(labels, centroids).shape == (16, 16)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4), np.float32),
                                 np.zeros((0, 4, 3), np.uint8)])
def test_compress_rejects_arrays_it_cannot_store(bad):
    with pytest.raises(ValueError):
        compress(bad, 4)


def test_size_report_for_grey_counts_one_channel():
    report = size_report((10, 10), 4)
    assert report.original_bits == 800 and report.label_bits == 200 and report.codebook_bits == 32


def test_demo_encodes_the_bundled_fixture(tmp_path, capsys):
    assert demo_main([str(FIXTURES / "images" / "rgb.png"), "--out", str(tmp_path), "-k", "2,16"]) == 0
    assert (tmp_path / "rgb_k2.kmq").stat().st_size == 22 + 6 + 64 * 48 // 8 + 4
    assert (tmp_path / "rgb_k16.png").exists()
    assert "label bits" in capsys.readouterr().out
