"""Histogram: the distinct colours of an image, weighted by how often they occur.

K-means over distinct colours with weights gives the same codebook as over
every pixel, for a fraction of the work: photos repeat colours heavily.
Every step works in slices so that an image whose pixels are all distinct
(2**24 colours) needs a few bytes per pixel, not tens.

Three ways to count, by what the code space allows (the same answer each):
a count per code (bincount) when there are few codes for the pixels (one or
two channels always, RGB from TABLE_MIN_COUNT pixels); a hashed table of
four-channel codes (2**32 of them) for many pixels, with the few codes that
share a slot sorted; a sort of the codes otherwise. The label lookup at the
end has the same tables, and for RGB below DENSE_MIN_PIXELS one in pages
of the red and green pairs the colours use (its memory grows with them).
"""

from __future__ import annotations

import numpy as np

from . import work

# Elements handled at once by the sliced passes: bounds their temporaries.
SLICE = 1 << 20
# Codes sorted at once (sort_in_runs): a fraction of a second each, so
# that the encoder's progress moves while a large image's codes are sorted.
SORT_RUN = 1 << 21
# Fewest pixels for which labels_for_pixels builds a table rather than
# binary-searching the colours' codes, for any number of channels (AMD
# EPYC): four channels' hashed table at 80x80 icons even, 90x90 0.91x the
# search's time; RGB's table in pages (_paged_lookup) at 64x64 Kodak crops
# even, 90x90 0.28x; two channels' 64 KiB table over every code.
TABLE_MIN_PIXELS = 1 << 13
# RGB from 2**16 pixels: the table over all 2**24 codes (16 MiB, at most
# 256 bytes a pixel there) rather than the pages. Whole saves, interleaved:
# the pages save 100x100 to 181x181 photos 0.82-0.93x of their time and
# ~13 MiB; from 256x256 they saved no time in repeated saves (1.03-1.08x at
# 256-724 px: glibc lifts its mmap threshold when the freed 16 MiB table
# was mapped, and the next save's k-means arrays then come from the heap).
DENSE_MIN_PIXELS = 1 << 16
# Fewest pixels counted by a bincount over every RGB code rather than a
# sort: the 2**24 counts cost ~40 ms to make and scan, a sort of 2**21
# codes as much (CPU time, AMD EPYC: 2**21 pixels of kodim23 54 ms
# against 72, the 24 MP upscale 0.18 s against 0.98). The counts are int64
# (np.add.at into uint32 takes numpy's slow path, 8x): 128 MiB, so only
# from 2**24 pixels, where they cost at most 8 bytes a pixel, as the sort's
# codes and their sorted copy do.
TABLE_MIN_COUNT = 1 << 24
# Four-channel codes: hashed into at most 2**MAX_SLOT_BITS slots by
# Knuth's multiplier (the top bits of code x HASH_MULTIPLIER, mod 2**32).
# A slot holds one code; the codes that find theirs taken are sorted (or
# searched) on their own. Sizes measured on RGBA icons, sprite sheets and
# a 24 MP photo (CPU time, AMD EPYC): the histogram from HASH_MIN_PIXELS
# pixels (a sort is as quick below: 256x256 icons) with a slot per
# PIXELS_PER_SLOT pixels (its colours are unknown yet; more slots cost more
# in cache misses than the codes they spare from the sort: a 24x16 icon
# sheet 0.33 s against a sort's 0.61, a 24 MP photo 0.57 against 0.93);
# the label lookup with SLOTS_PER_COLOUR slots per distinct colour (the
# sheet 0.11 s against a binary search's 0.73, a 256x256 icon 0.3 ms
# against 2.3).
HASH_MULTIPLIER = np.uint32(0x9E3779B1)
MAX_SLOT_BITS = 24
MIN_SLOT_BITS = 16
HASH_MIN_PIXELS = 1 << 18
PIXELS_PER_SLOT = 16
SLOTS_PER_COLOUR = 16
# The histogram hashes a run of equal codes at a time when there are at
# most this share as many runs as pixels (a 24x16 icon sheet has 0.38, a
# photo 0.58): the sheet's hashed histogram 0.26 s CPU against 0.32. (The
# label lookup does not: spreading run labels back costs more than it saves.)
RUN_SHARE = 0.5

def pack_codes(pixels: np.ndarray) -> np.ndarray:
    """One uint32 per pixel from its channels (pixels: (N, C) uint8)."""
    if pixels.shape[1] == 4 and pixels.flags.c_contiguous:
        # A pixel is one big-endian word: a byte swap, 5x quicker than shifts.
        return pixels.view(">u4").reshape(-1).astype(np.uint32)
    codes = pixels[:, 0].astype(np.uint32)
    for channel in range(1, pixels.shape[1]):
        codes <<= np.uint32(8)
        codes |= pixels[:, channel]
    return codes


def unpack_codes(codes: np.ndarray, channels: int) -> np.ndarray:
    """(M, channels) uint8 colours of uint32 codes, a slice at a time."""
    colors = np.empty((len(codes), channels), dtype=np.uint8)
    for start in range(0, len(codes), SLICE):
        part = codes[start : start + SLICE]
        if channels == 4:  # pack_codes's byte swap undone: 3x quicker at 64 codes, 5x at 2**20
            colors[start : start + SLICE] = part.astype(">u4").view(np.uint8).reshape(-1, 4)
            continue
        for channel in range(channels):
            shift = np.uint32(8 * (channels - 1 - channel))
            colors[start : start + SLICE, channel] = part >> shift  # wraps to the low byte
    return colors


def distinct_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct codes in ascending order (uint32) and their counts (uint32);
    sorts `codes` in place.

    A sort then a run-length scan in slices: two passes (count the runs,
    then fill arrays of exactly that size), so nothing but the codes and
    the answer is ever held whole. Several times faster than np.unique or a
    bincount over all 2**24 codes.
    """
    sort_in_runs(codes)
    total = len(codes)
    bounds = [(s, min(s + SLICE, total - 1)) for s in range(0, total - 1, SLICE)]
    run_count = 1 + sum(int(np.count_nonzero(codes[s + 1 : e + 1] != codes[s:e])) for s, e in bounds)
    distinct = np.empty(run_count, dtype=np.uint32)
    # Run starts, then (in place, a slice at a time, front to back) their
    # differences: the counts, without a second array as long as the runs.
    counts = np.empty(run_count + 1, dtype=count_dtype(total))
    distinct[0], counts[0], filled = codes[0], 0, 1
    for s, e in bounds:
        new_run = np.flatnonzero(codes[s + 1 : e + 1] != codes[s:e]) + (s + 1)
        distinct[filled : filled + len(new_run)] = codes[new_run]
        counts[filled : filled + len(new_run)] = new_run
        filled += len(new_run)
    counts[-1] = total
    for s in range(0, run_count, SLICE):
        e = min(s + SLICE, run_count)
        counts[s:e] = counts[s + 1 : e + 1] - counts[s:e]
    counts = counts[:-1]
    return distinct, counts


def sort_runs(count: int) -> int:
    """How many work.done("run") calls sort_in_runs makes for `count` codes."""
    runs = -(-count // SORT_RUN)
    merges = 0
    while runs > 1:
        merges += runs // 2
        runs -= runs // 2
    return -(-count // SORT_RUN) + merges if count > SORT_RUN else 0


def sort_in_runs(codes: np.ndarray) -> None:
    """codes.sort(), in steps of bounded length: runs of SORT_RUN sorted,
    then adjacent runs merged pairwise (a stable sort of two sorted runs is
    timsort's linear merge), each step one work.done("run"). The same
    result as one sort, in about the same time (a little less: runs fit
    the cache)."""
    total = len(codes)
    if total <= SORT_RUN:
        codes.sort()
        return
    for start in range(0, total, SORT_RUN):
        codes[start : start + SORT_RUN].sort()
        work.done("run")
    width = SORT_RUN
    while width < total:
        for start in range(0, total - width, 2 * width):
            codes[start : start + 2 * width].sort(kind="stable")
            work.done("run")
        width *= 2


def histogram(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct colours (M, C) uint8 in ascending code order and their counts
    (M,) uint32 (int64 from 2**32 pixels). The per-pixel codes are not kept:
    for a big image they are the largest array in the encoder, and
    recomputing them at the end (see labels_for_pixels) costs one cheap
    pass."""
    channels = pixels.shape[1]
    if channels < 3 or (channels == 3 and len(pixels) >= TABLE_MIN_COUNT):
        distinct, counts = counted_codes(pixels)
    elif channels == 4 and len(pixels) >= HASH_MIN_PIXELS:
        distinct, counts = hashed_codes(pixels)
    else:
        distinct, counts = distinct_codes(pack_codes(pixels))
    return unpack_codes(distinct, channels), counts


def count_dtype(total: int) -> type:
    """The counts' type for an image of `total` pixels."""
    return np.int64 if total >= 1 << 32 else np.uint32


def histogram_runs(pixels: int, channels: int) -> int:
    """How many work.done("run") calls histogram makes for `pixels` pixels."""
    if channels < 3 or (channels == 3 and pixels >= TABLE_MIN_COUNT):
        return 1
    if channels == 4 and pixels >= HASH_MIN_PIXELS:
        return -(-pixels // SLICE)
    return sort_runs(pixels)


def counted_codes(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """distinct_codes for up to three channels by a count per code, a slice
    at a time (np.add.at into int64 counts: as quick as one bincount, which
    would hold every code and an int64 copy of them)."""
    counts = np.zeros(1 << (8 * pixels.shape[1]), dtype=np.int64)
    for start in range(0, len(pixels), SLICE):
        np.add.at(counts, pack_codes(pixels[start : start + SLICE]), 1)
        work.done("run")
    distinct = np.flatnonzero(counts).astype(np.uint32)
    return distinct, counts[distinct].astype(count_dtype(len(pixels)))


def slots_of(codes: np.ndarray, bits: int) -> np.ndarray:
    """Each code's slot in a hashed table of 2**bits (uint32)."""
    slots = codes * HASH_MULTIPLIER
    slots >>= np.uint32(32 - bits)
    return slots


def slot_bits(slots: int) -> int:
    """Bits of a hashed table of about `slots` slots (a power of two at
    least that, within MIN_SLOT_BITS..MAX_SLOT_BITS)."""
    return min(MAX_SLOT_BITS, max(MIN_SLOT_BITS, (slots - 1).bit_length()))


def runs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(code of each run of equal codes, its length) when runs are at most
    RUN_SHARE of the codes (flat areas: icons, sprite sheets), else (the
    codes, None): the hashed passes then touch a slot per run, not per
    pixel."""
    change = run_changes(codes)
    if np.count_nonzero(change) > RUN_SHARE * len(codes):
        return codes, None
    starts = np.flatnonzero(change)
    return codes[starts], np.diff(starts, append=len(codes))


def run_changes(codes: np.ndarray) -> np.ndarray:
    """Whether each code starts a run of equal codes (codes: not empty)."""
    change = np.empty(len(codes), dtype=bool)
    change[0] = True
    np.not_equal(codes[1:], codes[:-1], out=change[1:])
    return change


def hashed_codes(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """distinct_codes for four-channel pixels without sorting them: each
    code (of a run of equal codes: see runs) is written to its slot of a
    hashed table (one of those that share a slot keeps it) and each slot's
    pixels are counted; the codes that lost their slot are taken off their
    slot's count and sorted on their own. Two passes of slices: no array as
    long as the pixels but those few."""
    bits = slot_bits(len(pixels) // PIXELS_PER_SLOT)
    owner = np.zeros(1 << bits, dtype=np.uint32)
    totals = np.zeros(1 << bits, dtype=np.int64)
    for start in range(0, len(pixels), SLICE):
        codes, lengths = runs(pack_codes(pixels[start : start + SLICE]))
        slots = slots_of(codes, bits)
        owner[slots] = codes
        np.add.at(totals, slots, 1 if lengths is None else lengths)
    lost_codes, lost_lengths = [], []
    for start in range(0, len(pixels), SLICE):
        codes, lengths = runs(pack_codes(pixels[start : start + SLICE]))
        lost = np.flatnonzero(owner.take(slots_of(codes, bits)) != codes)
        lost_codes.append(codes[lost])
        lost_lengths.append(np.ones(len(lost), np.intp) if lengths is None else lengths[lost])
        work.done("run")
    lost_codes, lost_totals = merged_runs(np.concatenate(lost_codes), np.concatenate(lost_lengths))
    np.subtract.at(totals, slots_of(lost_codes, bits), lost_totals)
    filled = np.flatnonzero(totals)
    distinct = np.concatenate([owner[filled], lost_codes])
    order = np.argsort(distinct, kind="stable")
    counts = np.concatenate([totals[filled], lost_totals]).astype(count_dtype(len(pixels)))
    return distinct[order], counts[order]


def merged_runs(codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct codes (ascending) and their summed lengths (int64)."""
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    return codes[starts], np.add.reduceat(lengths[order].astype(np.int64), starts) if len(starts) else lengths[:0].astype(np.int64)


def mapped_histogram(colors: np.ndarray, counts: np.ndarray, function) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The histogram of function(pixels) from that of the pixels, for a
    function of a pixel's colour alone (premultiply): colours merged where
    it maps several to one; and each given colour's row in it."""
    codes, merged = np.unique(pack_codes(function(colors)), return_inverse=True)
    merged = merged.reshape(-1)
    # float64 sums of integer counts are exact below 2**53 pixels
    summed = np.bincount(merged, weights=counts, minlength=len(codes))
    return unpack_codes(codes, colors.shape[1]), summed.astype(counts.dtype), merged


def labels_for_pixels(
    colors: np.ndarray, color_labels: np.ndarray, pixels: np.ndarray
) -> np.ndarray:
    """Each pixel's label (N,), given a label (uint8) for each distinct colour."""
    return label_lookup(colors, color_labels, len(pixels))(pixels)


def label_lookup(colors: np.ndarray, color_labels: np.ndarray, pixels: int):
    """pixels (N, C) -> their labels (N,) uint8, given a label for each
    distinct colour; built once, so a stream of blocks shares the table
    (`pixels`: how many will be looked up in all, which decides the table).

    Up to two channels (RGB from DENSE_MIN_PIXELS) a direct lookup table
    over every code is a single gather per slice; RGB below that a table in
    pages of the red and green pairs used (_paged_lookup); four-channel
    codes a hashed table (see hashed_codes) with SLOTS_PER_COLOUR slots per
    colour: a slot one colour has holds its label, one that several share
    holds SHARED and its pixels are searched among those colours. The few
    pixels of a small image (TABLE_MIN_PIXELS) are
    looked up by binary search in the colours' codes (ascending, as
    histogram returns them).
    """
    channels = colors.shape[1]
    if channels == 1 or (channels == 2 and pixels >= TABLE_MIN_PIXELS) or (
        channels == 3 and pixels >= DENSE_MIN_PIXELS
    ):
        table = np.zeros(1 << (8 * channels), dtype=np.uint8)
        for start in range(0, len(colors), SLICE):
            table[pack_codes(colors[start : start + SLICE])] = color_labels[start : start + SLICE]
        return _sliced(lambda part: table[pack_codes(part)])
    distinct = pack_codes(colors)
    if channels == 3 and pixels >= TABLE_MIN_PIXELS:
        return _sliced(_paged_lookup(distinct, color_labels))
    if channels == 4 and pixels >= TABLE_MIN_PIXELS:
        return _sliced(_hashed_lookup(distinct, color_labels))
    return _sliced(lambda part: color_labels[np.searchsorted(distinct, pack_codes(part))])


def _paged_lookup(distinct: np.ndarray, color_labels: np.ndarray):
    """RGB pixels -> labels through a table in pages of 256 entries (a page
    per red and green pair, an entry per blue), only for the pages the
    colours use, and a directory of the 2**16 pages' offsets: 256 KiB plus
    at most 256 bytes per colour, not a table over all 2**24 codes (a
    100x100 photo crop: 1.0 MiB at its peak against 16.1)."""
    pages = distinct >> np.uint32(8)  # ascending, as the codes are
    starts = np.flatnonzero(run_changes(pages))
    directory = np.zeros(1 << 16, dtype=np.uint32)
    directory[pages[starts]] = np.arange(len(starts), dtype=np.uint32) << np.uint32(8)
    table = np.zeros(len(starts) << 8, dtype=np.uint8)
    table[directory[pages] | (distinct & np.uint32(0xFF))] = color_labels

    def lookup(part: np.ndarray) -> np.ndarray:
        part = np.ascontiguousarray(part, dtype=np.uint8)
        # a pixel's red and green bytes read as one big-endian number: its page
        page = np.ndarray(len(part), ">u2", part, 0, (3,)).astype(np.uint16)
        entry = directory.take(page)
        entry |= part[:, 2]
        return table.take(entry)

    return lookup


# The hashed label table's mark of a slot that several colours share.
SHARED = 256


def _hashed_lookup(distinct: np.ndarray, color_labels: np.ndarray):
    bits = slot_bits(len(distinct) * SLOTS_PER_COLOUR)
    slots = slots_of(distinct, bits)
    table = np.zeros(1 << bits, dtype=np.uint16)
    users = np.bincount(slots, minlength=len(table))
    table[slots] = color_labels
    table[users > 1] = SHARED
    shared = np.flatnonzero(users[slots] > 1)
    shared_codes, shared_labels = distinct[shared], color_labels[shared]  # still ascending

    def lookup(part: np.ndarray) -> np.ndarray:
        codes = pack_codes(part)
        found = table.take(slots_of(codes, bits))
        unsure = np.flatnonzero(found == SHARED)
        if unsure.size:
            found[unsure] = shared_labels[np.searchsorted(shared_codes, codes[unsure])]
        return found.astype(np.uint8)

    return lookup


def _sliced(lookup):
    """`lookup` over every slice of SLICE pixels, one work.done("slice") each."""

    def labels_of(pixels: np.ndarray) -> np.ndarray:
        labels = np.empty(len(pixels), dtype=np.uint8)
        for start in range(0, len(pixels), SLICE):
            labels[start : start + SLICE] = lookup(pixels[start : start + SLICE])
            work.done("slice")
        return labels

    return labels_of
