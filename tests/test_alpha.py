"""RGBA colour error weighted by alpha (issue 14, item 5): clustered in
premultiplied space, the codebook stored un-premultiplied, few colours kept
exactly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pil_kmq.api import compress, reconstruct
from pil_kmq.encoder import collapse_transparent, premultiply, unpremultiply
from pil_kmq.options import Options
from pil_kmq.quantize.metrics import mean_squared_error, psnr_from_mse
from pil_kmq.quantize.quantizer import quantize

from helpers import premultiplied, reopen, save_to_bytes

OPAQUE = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [220, 220, 40], [240, 240, 240], [20, 20, 20]])


def opaque_colours_and_faint_noise(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Six opaque colours (each a little noisy) and, on half the pixels,
    random colours at alpha 1-24: a logo over a faint, noisy shadow."""
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(OPAQUE), (64, 64))
    rgb = np.clip(OPAQUE[which] + rng.normal(0, 4, (64, 64, 3)), 0, 255)
    alpha = np.full((64, 64), 255)
    faint = rng.random((64, 64)) < 0.5
    rgb[faint] = rng.integers(0, 256, (int(faint.sum()), 3))
    alpha[faint] = rng.integers(1, 25, int(faint.sum()))
    return np.dstack([rgb, alpha]).astype(np.uint8), faint


def opaque_error(image: np.ndarray, labels: np.ndarray, codebook: np.ndarray, faint: np.ndarray) -> float:
    return mean_squared_error(codebook[labels][~faint], image[~faint])


def test_faint_noise_no_longer_takes_the_opaque_colours_entries():
    """K = 7: weighted by alpha, each opaque colour gets an entry and the
    faint pixels one; clustered as plain RGBA (0.2.0), the faint pixels'
    invisible colours took two and two opaque colours were merged."""
    image, faint = opaque_colours_and_faint_noise()
    labels, codebook = compress(image, 7)
    plain_labels, plain_codebook = quantize(collapse_transparent(image), Options(colors=7))
    weighted = opaque_error(image, labels, codebook, faint)
    plain = opaque_error(image, plain_labels, plain_codebook, faint)
    assert weighted < 20 < 400 < plain  # about 12 against 687
    assert len(np.unique(labels[~faint])) == 6
    # The same file through Image.save.
    decoded = np.asarray(reopen(save_to_bytes(Image.fromarray(image, "RGBA"), colors=7)))
    np.testing.assert_array_equal(decoded, reconstruct(labels, codebook, image.shape))


def test_the_composited_error_is_smaller_too():
    image, _ = opaque_colours_and_faint_noise(seed=1)
    for k in (7, 12):
        labels, codebook = compress(image, k)
        plain_labels, plain_codebook = quantize(collapse_transparent(image), Options(colors=k))
        weighted = mean_squared_error(premultiplied(codebook[labels]), premultiplied(image))
        plain = mean_squared_error(premultiplied(plain_codebook[plain_labels]), premultiplied(image))
        assert weighted < 0.8 * plain


def test_an_entry_is_the_alpha_weighted_mean_colour():
    """K = 1 over opaque red and blue at alpha 51: the entry's colour is
    (sum of colour * alpha) / (sum of alpha), its alpha the plain mean."""
    image = np.array([[[255, 0, 0, 255], [0, 0, 255, 51]]], np.uint8)
    _, codebook = compress(image, 1)
    red, green, blue, alpha = codebook[0].astype(int)
    assert alpha == 153 and green == 0
    assert abs(red - 255 * 255 / 306) <= 1.5 and abs(blue - 255 * 51 / 306) <= 1.5  # 212.5 and 42.5
    # Straight RGBA would have given (128, 0, 128, 153).


@pytest.mark.parametrize("options", [{}, {"dither": True}, {"quality": 100}])
def test_few_colours_round_trip_exactly_semi_transparent_ones_included(options):
    """Colours that premultiply to the same value ((10, 0, 0, 1) and
    (200, 0, 0, 1) both to (0, 0, 0, 1)) still keep their own entries."""
    colours = np.array(
        [[10, 0, 0, 1], [200, 0, 0, 1], [0, 0, 0, 1], [255, 255, 255, 128], [254, 255, 255, 128],
         [17, 99, 201, 77], [0, 0, 0, 0], [30, 60, 90, 255]], np.uint8)
    rng = np.random.default_rng(3)
    image = colours[rng.integers(0, len(colours), (20, 30))]
    labels, codebook = compress(image, 8, **options)
    np.testing.assert_array_equal(reconstruct(labels, codebook, image.shape), image)
    for coding in ({}, {"optimize": True}):
        data = save_to_bytes(Image.fromarray(image, "RGBA"), colors=8, **options, **coding)
        np.testing.assert_array_equal(np.asarray(reopen(data)), image)


def test_opaque_rgba_clusters_as_plain_rgba_and_as_rgb():
    """At alpha 255 premultiplying changes nothing: the same codebook and
    labels as clustering the stored RGBA, and as the RGB image alone."""
    rng = np.random.default_rng(4)
    y, x = np.mgrid[0:40, 0:50]
    rgb = np.clip(np.dstack([x * 5, y * 6, (x + y) * 3]) + rng.normal(0, 8, (40, 50, 3)), 0, 255).astype(np.uint8)
    image = np.dstack([rgb, np.full((40, 50), 255, np.uint8)])
    for k in (3, 16, 64):
        labels, codebook = compress(image, k)
        plain_labels, plain_codebook = quantize(image, Options(colors=k))
        np.testing.assert_array_equal(codebook, plain_codebook)
        np.testing.assert_array_equal(labels, plain_labels)
        rgb_labels, rgb_codebook = compress(rgb, k)
        np.testing.assert_array_equal(codebook[:, :3], rgb_codebook)
        np.testing.assert_array_equal(labels, rgb_labels)


def test_unpremultiply_is_undone_by_premultiplying():
    """Every premultiplied entry (colour <= alpha, as any mean of
    premultiplied colours is) comes back exactly, so labels found in
    premultiplied space are nearest to the stored codebook too."""
    colour, alpha = np.meshgrid(np.arange(256), np.arange(256))
    valid = colour <= alpha
    entries = np.stack([colour[valid], 255 - colour[valid] * 0, colour[valid] // 2, alpha[valid]], axis=1)
    entries[:, 1] = np.minimum(entries[:, 1], entries[:, 3])
    entries = entries.astype(np.uint8)
    stored = unpremultiply(entries)
    np.testing.assert_array_equal(premultiply(stored), entries)
    np.testing.assert_array_equal(premultiply(stored), premultiplied(stored))  # the tests' own definition
    assert (stored[entries[:, 3] == 0] == 0).all()


def test_premultiply_rounds_every_colour_and_alpha_as_the_division_does():
    """premultiply's shift form equals round(c·a/255) = (c·a + 127) // 255
    for all 65,536 (colour, alpha) pairs, in every channel."""
    colour, alpha = (v.ravel() for v in np.meshgrid(np.arange(256), np.arange(256)))
    rgba = np.stack([colour, 255 - colour, colour, alpha], axis=1).astype(np.uint8).reshape(256, 256, 4)
    expected = np.stack([colour * alpha, (255 - colour) * alpha, colour * alpha], axis=1)
    expected = np.concatenate([(expected + 127) // 255, alpha[:, None]], axis=1).reshape(256, 256, 4)
    result = premultiply(rgba)
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, expected)


def test_collapse_transparent_zeroes_every_clear_pixel_and_nothing_else():
    rng = np.random.default_rng(6)
    image = rng.integers(0, 256, (30, 41, 4), dtype=np.uint8)
    image[..., 3] *= rng.random((30, 41)) < 0.7  # ~30 % fully transparent
    before = image.copy()
    collapsed = collapse_transparent(image)
    clear = image[..., 3] == 0
    assert (collapsed[clear] == 0).all()
    np.testing.assert_array_equal(collapsed[~clear], image[~clear])
    np.testing.assert_array_equal(image, before)  # the caller's array is left alone


def test_a_psnr_target_counts_colour_error_by_alpha():
    """The target is reached on the error the encoder minimizes (alpha-
    weighted), with fewer colours than the faint noise's straight colours need."""
    image, _ = opaque_colours_and_faint_noise(seed=2)
    labels, codebook = compress(image, 256, psnr=30)
    weighted = psnr_from_mse(mean_squared_error(premultiplied(codebook[labels]), premultiplied(image)))
    assert weighted >= 30
    plain_labels, plain_codebook = quantize(collapse_transparent(image), Options(psnr=30))
    assert len(codebook) < len(plain_codebook) / 2


def test_rgba_encoding_is_deterministic():
    image, _ = opaque_colours_and_faint_noise(seed=5)
    im = Image.fromarray(image, "RGBA")
    for options in ({"colors": 16}, {"colors": 16, "dither": True}, {"psnr": 35, "optimize": True}):
        assert save_to_bytes(im, **options) == save_to_bytes(im.copy(), **options)


def test_premultiply_matches_the_definition_for_every_value_and_alpha():
    """Every (value, alpha) pair, against the tests' own rounding."""
    value, alpha = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    rgba = np.stack([value, 255 - value, value // 2, alpha], axis=-1).astype(np.uint8)
    np.testing.assert_array_equal(premultiply(rgba), premultiplied(rgba))


@pytest.mark.parametrize("k", [16, 256])
def test_sampled_colour_check_never_answers_more_wrongly(k):
    """The sample only ever answers 'more than k' when the image has more
    (transparent pixels counted as one colour); colours the stride skips
    are left to the exact count."""
    from pil_kmq.encoder import _has_at_most, _sample_has_more

    rng = np.random.default_rng(k)
    for extra in (0, 1, 5):
        pixels = np.zeros((200 * 200, 4), dtype=np.uint8)
        pixels[:, :3] = rng.integers(0, 256, (k - 1, 3), dtype=np.uint8)[rng.integers(0, k - 1, len(pixels))]
        pixels[1::7919][:extra, 3] = 9  # a few colours the stride skips
        exact = len(np.unique(pixels, axis=0))
        assert _has_at_most(pixels, k) == (exact <= k)
        assert not _sample_has_more(pixels, k) or exact > k
    noise = rng.integers(1, 256, (256 * 256, 4), dtype=np.uint8)
    assert _sample_has_more(noise, k) and not _has_at_most(noise, k)
    invisible = noise.copy()
    invisible[:, 3] = 0
    assert not _sample_has_more(invisible, k)


def test_few_visible_colours_under_many_invisible_ones_are_kept_exactly():
    """Transparent pixels of a thousand colours and five opaque colours,
    colors=8: stored as six colours exactly, the transparent as (0, 0, 0, 0)."""
    rng = np.random.default_rng(5)
    image = np.zeros((128, 128, 4), dtype=np.uint8)
    image[..., :3] = rng.integers(0, 256, (128, 128, 3))
    visible = rng.random((128, 128)) < 0.5
    image[visible, :3] = OPAQUE[:5][rng.integers(0, 5, int(visible.sum()))]
    image[visible, 3] = 255
    back = np.asarray(reopen(save_to_bytes(Image.fromarray(image, "RGBA"), colors=8)))
    expected = np.where(visible[..., None], image, 0)
    np.testing.assert_array_equal(back, expected)


@pytest.mark.parametrize("extra", [{}, {"smooth": 2.0}, {"dither": True}, {"psnr": 30.0}])
def test_quantizing_through_the_colour_map_equals_quantizing_the_mapped_image(extra):
    """colour_map=premultiply maps the histogram's colours, not every pixel:
    the same labels and codebook as quantizing the premultiplied image."""
    from pil_kmq.quantize.quantizer import quantize_with_smoothing

    image, _ = opaque_colours_and_faint_noise(4)
    image[::5, ::3, 3] = 0  # clear pixels of many colours, one colour premultiplied
    options = Options(colors=12, **extra)
    mapped = quantize_with_smoothing(image, options, colour_map=premultiply)
    direct = quantize_with_smoothing(premultiply(image), options)
    for got, expected in zip(mapped, direct):
        np.testing.assert_array_equal(got, expected)


def test_colour_check_samples_every_column_of_a_sprite_sheet():
    """A sheet whose width equals the plain sample stride (4096 rows of 64:
    every 64th pixel is the first column) is seen to have many colours
    though its first column is one clear colour."""
    from pil_kmq.encoder import _sample_has_more

    rng = np.random.default_rng(2)
    sheet = rng.integers(1, 256, (4096, 64, 4), dtype=np.uint8)
    sheet[:, 0] = 0
    assert _sample_has_more(sheet.reshape(-1, 4), 16)


@pytest.mark.parametrize("colour_map", [None, premultiply])
def test_a_histogram_the_caller_made_gives_what_the_quantizer_would(colour_map):
    """counted= (the encoder counts a small RGBA image's colours once, to
    tell whether it has at most K): the same labels and codebook."""
    from pil_kmq.quantize.histogram import histogram
    from pil_kmq.quantize.quantizer import quantize_with_smoothing

    image, _ = opaque_colours_and_faint_noise(4)
    image[::5, ::3, 3] = 0
    options = Options(colors=12)
    counted = histogram(image.reshape(-1, 4))
    given = quantize_with_smoothing(image, options, colour_map=colour_map, counted=counted)
    made = quantize_with_smoothing(image, options, colour_map=colour_map)
    for got, expected in zip(given, made):
        np.testing.assert_array_equal(got, expected)
