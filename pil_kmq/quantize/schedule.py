"""Every number that changes what the quantizer outputs, derived in one
place from a `speed` (1 best .. 10 fastest, as libimagequant's
liq_set_speed) and the size of the problem: schedule() returns them as one
frozen Schedule, each field with the reason for its value.

Figures quoted are PSNR over Kodak (24 images) and scikit-image's nine
colour photographs, time as a ratio to libimagequant speed 4
(benchmarks/quantize.py, AMD EPYC, 2 cores). Numbers that change only the
time (chunk sizes, when to search by brute force) stay beside the code they
pace: every search is exact, so they cannot change a label.

Tuning rule (README, notes for contributors): a new knob only replaces an
old one, for a gain larger than the spread between image sets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_SPEED = 4
SPEEDS = range(1, 11)


@dataclass(frozen=True)
class Schedule:
    """What one k-means run does (see kmeans.kmeans for the stages)."""

    # -- path --------------------------------------------------------------
    # Lloyd straight on the exact colours (no bins, no wide stage): few
    # colours for K, or few pixels, leave nothing for bins to save.
    short: bool
    # The short path's Lloyd pass cap.
    short_passes: int
    # The variance split (without a wide stage) runs on bins 2**(8 -
    # split_bits) wide (0: on the points themselves: colours or coarse bins).
    split_bits: int
    # -- starts ------------------------------------------------------------
    # Share of the boxes the variance split cuts in one round.
    split_fraction: float
    # Seeded k-means++ starts tried beside the split.
    restarts: int
    # Restarts only need ranking: they stop at this many times tol.
    restart_tol_factor: float
    # Starts converge (loosely) on bins 2**(8 - wide_bits) wide, and are
    # improved by swaps there, before the coarse stage (0: no wide stage);
    # on the coarse bins themselves when there are at most wide_min_points.
    wide_bits: int
    wide_min_points: int
    # Also start on bins one bit finer when there are fewer wide bins than
    # this x K (smooth images); the better after the coarse passes goes on.
    wide_finer_share: int
    # k-means++ seeds are drawn from bins 2**(8 - seed_bits) wide.
    seed_bits: int
    # -- coarse stage ------------------------------------------------------
    # The coarse passes cluster means of bins 2**(8 - coarse_bits) wide.
    coarse_bits: int
    coarse_passes: int
    # -- swaps (swap.py) ---------------------------------------------------
    # A swap is tried when its cut gains this share of the removal's cost.
    promise: float
    # Swaps measure each cluster's cut at the best level of its best axis
    # (as the split cuts) rather than through its mean (swap.cut_measure).
    level_cuts: bool
    # K <= 16: swap trials (one swap at a time, swap.tried_swaps): entries tried
    # (cheap, rich), rounds, and the settling of each trial.
    trial_entries: tuple[int, int]
    trial_rounds: int
    trial_max_entries: int
    trial_passes: int
    trial_tol_factor: float
    # K > 16 on wide bins: rounds of wide_swap_share x K swaps, each
    # settled by wide_swap_passes passes.
    wide_swaps: int
    wide_swap_share: float
    wide_swap_passes: int
    # On the coarse bins: rounds, share, passes, the focus of the measures
    # (swap.focused_swapped), the most bins worth it, and when to swap on
    # bins one bit finer (fewer coarse bins than this x K).
    coarse_swaps: int
    coarse_swap_share: float
    coarse_swap_passes: int
    swap_reach: int
    swap_max_points: int
    swap_finer_share: int
    # -- fine stage (refine.py) --------------------------------------------
    # Passes over the exact colours (up to exact_max_colours of them; past
    # that over bins 2**(8 - fine_bits) wide, up to fine_max_bins), to
    # fine_tol_factor x tol, over-relaxed by `relaxation`.
    fine_passes: int
    fine_tol_factor: float
    exact_max_colours: int
    fine_bits: int
    fine_max_bins: int
    relaxation: float
    # Swap rounds among the fine passes, after fine_swap_after of them.
    fine_swaps: int
    fine_swap_after: int
    fine_swap_share: float
    # Passes on the codebook rounded to colours, the one the file stores.
    rounded_passes: int


@dataclass(frozen=True)
class TargetSearch:
    """The psnr / quality search over K and smoothing (rd_search.py) and
    the smoothing remap (remap.py): the same at every speed."""

    # K grows by sqrt(2) a step, at most 4 steps above the smallest K
    # reaching the target: past that, K costs more bits than smoothing saves.
    ladder_step: float = math.sqrt(2)
    ladder_steps: int = 4
    # Remaps tried per K, and the range of `smooth` they may use.
    smooth_tries: int = 3
    smooth_range: tuple[float, float] = (1 / 16, 64.0)
    # First guess of the error rise: relative MSE rise = rise x smooth **
    # power (fitted on Kodak, refitted after each try).
    rise: float = 0.05
    power: float = 1.25
    # Aim this close under the allowed rise (the power law is approximate).
    aim: float = 0.97
    # Estimated sizes closer than this (relative) are confirmed exactly.
    estimate_spread: float = 0.015
    # Red-black passes of the remap (each updates both colours of the
    # checkerboard once): later passes move few pixels.
    remap_passes: int = 3


TARGET_SEARCH = TargetSearch()


def seed_trials(k: int) -> int:
    """Candidates per k-means++ step: scikit-learn's 2 + ln K."""
    return 2 + int(math.log(k))


def _at(speed: int, steps: dict[int, object]):
    """The value of the largest listed speed at or below `speed`."""
    # a plain loop: a generator and max() cost 0.7 us a call, a dozen calls
    # 9 us of an 8x8 image's save
    at = None
    for listed in steps:
        if listed <= speed and (at is None or listed > at):
            at = listed
    return steps[at]


def schedule(speed: int, k: int, distinct_colours: int, pixels: int, channels: int) -> Schedule:
    """The Schedule for clustering `distinct_colours` colours of `pixels`
    pixels with `channels` channels into k, at `speed` (1 to 10)."""
    if speed not in SPEEDS:
        raise ValueError(f"speed must be an integer from 1 to 10, got {speed!r}")
    small, middle = k <= 16, k <= 64
    rgba = channels >= 4
    # Bins pay when colours outnumber them: below max(4096, 16 K) colours,
    # or 2**16 pixels, Lloyd over the colours themselves costs less than
    # the bins' bookkeeping (a 64x64 photo at K=64 spent 27 ms in the wide
    # stage, libimagequant 6 ms; 256x256 photos at K=16 / 64 / 256, speed
    # 4: 0.70 / 0.90 / 1.06x libimagequant's time against 0.99 / 1.14 /
    # 1.18x staged, +0.21-0.23 dB over it); L images (<= 256 colours)
    # always. Speed 1 keeps the staged path down to 4096 colours. Speed >= 9
    # only up to 128x128: on 256x256 photos the coarse bins' two passes and
    # one exact assignment cost less than two passes over every colour
    # (K=64 / 256: 1.39 / 2.16x libimagequant 10's time against 1.96 /
    # 3.52x, +0.88 / +0.70 dB over it against +0.94 / +0.87); not RGBA
    # icons (no quicker: 3.7 / 3.1x against 3.4 / 3.0x, and 0.6 dB lower
    # at K=256).
    short = channels < 3 or distinct_colours <= max(4096, _at(speed, {1: 0, 2: 16}) * k) or (
        speed > 1 and pixels <= 1 << (16 if rgba else _at(speed, {1: 16, 9: 14}))
    )
    # On the short path over more than 4096 colours a swap round costs
    # half of libimagequant's time (128x128 photos at K=16) for 0.1 dB: from
    # speed 4, swaps only on fewer colours (32x32 photos need them to
    # stay above libimagequant).
    costly_swaps = short and distinct_colours > 4096 and speed >= 4
    return Schedule(
        short=short,
        # Speed 4, K=256: 2 (32x32-128x128 photos 0.82-0.88x the k-means
        # time at -0.02..-0.06 dB, still +0.19..+0.84 over libimagequant 4;
        # at K <= 64 fewer than 4 passes lose the margin: 64x64 K=64 +0.00).
        short_passes=_at(speed, {1: 300, 2: 40, 3: 8, 4: 4 if middle else 2, 7: 2}),
        # A start on 5-bit bins costs a fraction of one on the colours (a
        # 128x128 photo at K=16: 2 ms against 23) for 0.05-0.08 dB that
        # Lloyd mostly wins back; speed 1 splits the points themselves.
        # Also from 8 K colours (32x32-64x64 images, speed 4: photos 0.7-0.9x
        # the k-means time at -0.04..+0.07 dB); up to that the bins are
        # few for K (icons 64x64 at K=256: -1.0 dB) or fewer than K (the
        # split then runs twice).
        # Colour images up to 64x64 at K <= 16: 4-bit bins, 0.8-0.96x the
        # k-means time (Kodak 32x32 / 64x64 photos +0.03 / -0.02 dB, skimage
        # -0.07 / +0.03: within the sets' spread; RGBA icons -0.07 / -0.02,
        # still +1.3 over libimagequant 4). Not at 128x128 (-0.05 dB where
        # the time is 0.3x libimagequant's), nor at K=64 (photos 0.72-0.84x
        # at -0.08..+0.07 dB, but RGBA icons -0.5..-0.7 dB, and an opaque
        # RGBA image must cluster as its RGB) or K=256 (-0.14..-0.29 dB).
        split_bits=_at(speed, {1: 0, 2: 4 if small and pixels <= 1 << 12 and channels >= 3 else 5})
        if distinct_colours > 8 * k else 0,
        # Half the boxes a round: the same boxes as one at a time on photos,
        # tens of rounds instead of K.
        # Short path from speed 2: three quarters a round (11 rounds at K=256
        # instead of 14; 32x32-128x128 photos 0.85-0.95x the time,
        # -0.03..+0.04 dB; icons 32x32 K=64 -0.24 dB, +2.6 over
        # libimagequant 4). Speed >= 9: all of them, log2 K rounds (32x32 photos
        # 0.9x the time, +0.5-1.4 dB over libimagequant 10 still), but 3/4
        # on up to 4 K colours (8x8 images at K=16, 16x16 at K=64): 8x8
        # icons at K=16 -0.26 dB under libimagequant 10 with all, +3.30 with
        # 3/4 in 0.99x the time (photos +0.83 -> +1.66 dB in 1.16x).
        # Measured again at speed 4 (24 Kodak crops, 64 icons, 32-128 px):
        # all a round -0.07..-0.77 dB on photos; rounding the batch up (a
        # round less) icons -0.16..-1.10 dB; a half (or one at a time) icons
        # +0.01..+0.86 dB (32x32 K=256), photos within 0.015 dB, for 1-3
        # rounds more (each 0.1-0.3 ms on these sizes).
        split_fraction=_at(speed, {1: 0.5, 2: 0.75, 9: 0.75 if distinct_colours <= 4 * k else 1.0}) if short else 0.5,
        # K <= 16: one restart finds a second basin the swaps miss (issue
        # 12: with the swap trials, 5 restarts -> 1 lost nothing); at
        # speed >= 2 the swaps alone (-0.003 dB Kodak K=16).
        restarts=1 if small and speed == 1 else 0,
        restart_tol_factor=10.0,
        # Up to K=64 starts compete on wide bins, where passes are cheap;
        # at K=256 the split alone (wide bins are too coarse to rank 256
        # entries). Speed >= 9: the split on the coarse bins directly.
        wide_bits=5 if middle and speed <= 8 else 0,
        # Coarse bins few enough to rank starts on directly.
        wide_min_points=4096,
        # K=64 on smooth images: skimage's chelsea, retina, ihc +0.05,
        # +0.05, +0.01 dB (+0.016 on the set), Kodak unchanged; speed 1.
        # RGBA bins are already at their 21-bit limit: no finer level.
        wide_finer_share=20 if 16 < k <= 64 and speed == 1 and not rgba else 0,
        # A few hundred seeds: seeding costs little beside the passes.
        seed_bits=4,
        # Speed >= 9: bins twice as wide (a quarter as many points).
        coarse_bits=_at(speed, {1: 6, 9: 5}),
        # Time, not quality, bounds these (run to convergence they gain
        # 0.006 dB at K=256): 8 up to K=64, 3 at K=256, fewer when fast.
        coarse_passes=_at(speed, {1: 8 if middle else 3, 7: 4 if middle else 2, 9: 2}),
        promise=0.5,
        # Through the mean from speed 2: a third of the measuring time
        # (32x32-128x128 images at K=16: 0.88-0.91x the k-means time,
        # -0.004..+0.009 dB). Speed 1 keeps the best level, the best we
        # know, where time matters least: Kodak K=16 +0.002 dB, skimage
        # K=64 +0.006 over the mean cut, which left speed 1 under
        # scikit-learn's best of ten (29.9046 / 36.4994 against 29.906 /
        # 36.502).
        level_cuts=speed == 1,
        # K=16: 3 x 3 pairs for 3 rounds (+0.008 dB Kodak, +0.025 skimage
        # over 5 restarts); more rounds chase what wide bins cannot see.
        trial_entries=(3, 3),
        # Speed 4: no search, the swap rounds instead (Kodak K=16, 12
        # images: +0.286 dB over libimagequant 4 in 0.89x its time, against
        # +0.277 in 1.04x with one round of trials).
        trial_rounds=_at(speed, {1: 3, 2: 2, 3: 1, 4: 0}) if small else 0,
        # Trials are whole Lloyd runs: only over points x K <= 2**17
        # (photographs' wide bins: 1-7k; on noise the trials would cost
        # more than all the other passes). Swap rounds otherwise.
        trial_max_entries=1 << 17,
        trial_passes=20,
        trial_tol_factor=3.0,
        # K=64: 12 rounds of a tenth of K, 3 passes each (+0.05 dB Kodak,
        # for less time than a restart; a tenth +0.004 dB over a fifth).
        # K=16 without the trials (too many wide bins for them): 5.
        # Speed 4: K=16 two rounds; K=64 none (two cost 0.1x of libimagequant's
        # time for under 0.01 dB).
        # Short path, speed 4, K=16: one round (32x32 photos 0.84x the
        # time at -0.01 dB, 64x64 0.81x at -0.02, still above libimagequant
        # 4), none up to 16 K colours (8x8 and 16x16 images: 0.7x the time,
        # -0.1..-0.3 dB, +0.3..+2.3 dB over libimagequant 4 still).
        wide_swaps=_at(speed, {1: 5 if small else 12, 2: 4 if small else 8, 3: 2 if small else 4,
                               4: (int(distinct_colours > 16 * k) if short else 2) if small else 0,
                               6: 0}) if middle and not costly_swaps else 0,
        wide_swap_share=0.1,
        wide_swap_passes=3,
        # K=256: 2 rounds of 3% of K, one pass each (3% +0.006 dB skimage
        # over 5%, Kodak -0.002).
        # Speed 4: one (Kodak: without it -0.07 dB for 0.05x the time).
        coarse_swaps=_at(speed, {1: 2, 3: 1, 7: 0}) if k > 64 else 0,
        coarse_swap_share=0.03,
        coarse_swap_passes=1,
        # Exact costs and gains only for 8 x the swaps' count of entries:
        # a third cheaper than measuring all, same choices on photos.
        swap_reach=8,
        # Beyond 2**16 coarse bins (noise, synthetic images) a removal
        # cost, a distance to every entry, costs more than a swap gains.
        swap_max_points=1 << 16,
        # Fewer coarse bins than 28 K (smooth images): swaps on bins one
        # bit finer; K=256 Kodak +0.006 dB (kodim02 +0.22), retina +0.08.
        swap_finer_share=28 if speed <= 2 and not rgba else 0,
        # The fine passes gain most (0.08 dB at K=256 against 0.006 for the
        # coarse ones): 20 / 24 / 10 at speed 1 (K=64 to 24: +0.001 dB
        # Kodak, +0.002 skimage; K=256 10: +0.004 dB for 0.05x of liq's
        # time), fewer as speed rises. Speed 4: 4 (Kodak, 12 images: K=16
        # 4 passes -0.001 dB against 6; K=256 5 passes +0.298 dB over
        # libimagequant 4 in 0.96x its time; skimage K=64 with 6: +0.42 dB
        # in 1.04-1.09x).
        fine_passes=_at(speed, {
            1: 20 if small else 24 if middle else 10,
            2: 12 if small else 16 if middle else 8,
            3: 8 if small else 10 if middle else 6,
            4: 4,
            6: 4 if middle else 2,
            8: 2,
            9: 0,
        }),
        # K=16: fine passes are cheap beside the start, to tol/10 (+0.0008
        # dB Kodak, +0.0005 skimage) at speed 1.
        fine_tol_factor=0.1 if small and speed == 1 else 1.0,
        # One search over the exact colours (some 100 bytes a colour) up to
        # 2**17 (K=16) / 2**18 colours: skimage's motorcycles (150k
        # colours) +0.01 dB at K=256, 20% faster than bins.
        exact_max_colours=1 << 17 if small else 1 << 18,
        # Bins 2 levels wide: about a photograph's colours, far fewer than
        # noise's; beyond 2**19 of them the coarse bins are fine enough.
        fine_bits=7,
        fine_max_bins=1 << 19,
        # Each step moved 1.8x toward the mean, kept if it pays: covers more
        # ground a pass (Kodak +0.02 dB at K=256, +0.006 at K=64).
        relaxation=1.8,
        # K=256: one round of 2% of K after 4 fine passes, judged on the
        # exact colours: +0.013 dB Kodak and skimage (issue 12).
        fine_swaps=1 if k > 64 and speed <= 3 else 0,
        fine_swap_after=4,
        fine_swap_share=0.02,
        # One pass on the rounded codebook: the rounded mean is the best
        # integer entry, so it lowers the error the file has. A plain pass
        # (refine.rounded_passes says why).
        # Speed 10: none (the rounded split, nearest labels).
        rounded_passes=_at(speed, {1: 1, 10: 0}),
    )
