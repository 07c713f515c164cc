"""Draw the documentation's figures into docs/figures/ (``make figures``).

* ``derivation.png``: how ``(seed, offset)`` becomes a key, values and the next generator.
* ``distributions.png``: histograms of rngstate draws against scipy's densities, with the
  Kolmogorov-Smirnov (continuous) or chi-square (discrete) p-value of each sample.

The draws use fixed seeds, so a rerun redraws the same pictures.
"""

from __future__ import annotations

import pathlib
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402
from scipy import stats  # noqa: E402

import rngstate as rs  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
PNG = {"dpi": 150, "metadata": {"Software": None}}  # no version stamp: reruns give equal files

STATE = "#dbe9f6"
CIPHER = "#f6e3c5"
OUTPUT = "#dcefd9"
EDGE = "#3b4a5a"


def _box(ax, x, y, w, h, title, body, color):
    ax.add_patch(
        FancyBboxPatch(
            (x, y),
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=color,
            edgecolor=EDGE,
            linewidth=1.2,
        )
    )
    ax.text(x + w / 2, y + h - 0.17, title, ha="center", va="top", fontsize=11, weight="bold")
    ax.text(
        x + w / 2,
        y + h / 2 - 0.16,
        body,
        ha="center",
        va="center",
        fontsize=8.8,
        family="monospace",
        linespacing=1.45,
    )


def _arrow(ax, start, end, label="", dashed=False, label_at=None):
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=14,
            color=EDGE,
            linewidth=1.3,
            linestyle="--" if dashed else "-",
            shrinkA=2,
            shrinkB=2,
        )
    )
    if label:
        mx, my = label_at or ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.08)
        ax.text(mx, my, label, ha="center", va="bottom", fontsize=8.5, color=EDGE)


def derivation(path: pathlib.Path) -> None:
    fig, ax = plt.subplots(figsize=(12, 5.0))
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 5.0)
    ax.axis("off")

    _box(
        ax, 0.2, 2.55, 2.5, 1.65, "seed s", "64-bit, as uint32[2]\n[s >> 32, s & 0xffffffff]", STATE
    )
    _box(
        ax,
        0.2,
        0.45,
        2.5,
        1.65,
        "offset o",
        "64-bit, as uint32[2]\n[o >> 32, o & 0xffffffff]",
        STATE,
    )
    _box(
        ax,
        4.1,
        1.3,
        2.3,
        2.1,
        "threefry2x32-20",
        "one block:\nkey   = seed words\ninput = offset words",
        CIPHER,
    )
    _box(ax, 7.2, 1.55, 1.75, 1.6, "key", "typed\nthreefry2x32\nkey", OUTPUT)
    _box(ax, 9.75, 2.55, 2.0, 1.65, "sampler", "jax.random.<op>\n(key, shape, ...)", OUTPUT)
    _box(
        ax, 9.75, 0.45, 2.0, 1.65, "next generator", "(s, o + 1)\nreturned with\nthe values", STATE
    )

    _arrow(ax, (2.75, 3.35), (4.1, 2.85), "cipher key", label_at=(3.55, 3.25))
    _arrow(ax, (2.75, 1.35), (4.1, 1.85), "counter", label_at=(3.3, 1.72))
    _arrow(ax, (6.45, 2.35), (7.2, 2.35))
    _arrow(ax, (9.0, 2.7), (9.75, 3.3))
    _arrow(ax, (10.75, 2.5), (10.75, 2.15), dashed=True)
    _arrow(
        ax,
        (9.75, 0.8),
        (2.75, 0.8),
        "o + 1: where the next op starts",
        dashed=True,
        label_at=(6.25, 0.85),
    )
    ax.text(10.75, 4.72, "values", ha="center", va="bottom", fontsize=10, weight="bold")
    _arrow(ax, (10.75, 4.22), (10.75, 4.7))

    ax.set_title(
        "One key per operation: g.<op>(...) returns (jax.random.<op>(g.key(), ...), "
        "g.construct(1))",
        fontsize=11,
        pad=6,
    )
    fig.savefig(path, bbox_inches="tight", **PNG)
    plt.close(fig)


N = 200_000

# (title, draw(gen) -> samples, scipy distribution, discrete)
CASES = [
    ("normal", lambda g: g.normal((N,)), stats.norm(), False),
    ("gamma(a=2.5)", lambda g: g.gamma(2.5, (N,)), stats.gamma(2.5), False),
    ("beta(2, 5)", lambda g: g.beta(2.0, 5.0, (N,)), stats.beta(2, 5), False),
    ("exponential", lambda g: g.exponential((N,)), stats.expon(), False),
    ("t(df=4)", lambda g: g.t(4.0, (N,)), stats.t(4), False),
    ("poisson(lam=4)", lambda g: g.poisson(4.0, (N,)), stats.poisson(4), True),
]


def _p_value(samples: np.ndarray, dist, discrete: bool) -> tuple[str, float]:
    if not discrete:
        return "KS", stats.kstest(samples, dist.cdf).pvalue
    top = int(dist.ppf(1 - 1e-4))
    observed = np.bincount(np.minimum(samples, top), minlength=top + 1)
    expected = dist.pmf(np.arange(top + 1)) * samples.size
    expected[-1] += dist.sf(top) * samples.size  # the tail merged into the last bin
    return "chi-square", stats.chisquare(observed, expected).pvalue


def distributions(path: pathlib.Path) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(11, 6))
    root = rs.Generator(seed=20261201)
    for ax, (title, draw, dist, discrete) in zip(axes.flat, CASES, strict=True):
        values, _ = draw(root.stream(title))
        samples = np.asarray(values)
        test, p = _p_value(samples, dist, discrete)
        if discrete:
            k = np.arange(0, int(dist.ppf(0.9999)) + 1)
            counts = np.bincount(samples, minlength=k.size)[: k.size] / samples.size
            ax.bar(k, counts, width=0.8, color="#7aa6d6", label="rngstate")
            ax.plot(k, dist.pmf(k), "o", color="#c0392b", ms=4, label="scipy pmf")
        else:
            lo, hi = dist.ppf(0.001), dist.ppf(0.999)
            ax.hist(
                samples, bins=80, range=(lo, hi), density=True, color="#7aa6d6", label="rngstate"
            )
            x = np.linspace(lo, hi, 400)
            ax.plot(x, dist.pdf(x), color="#c0392b", lw=1.6, label="scipy pdf")
        ax.set_title(f"{title}    {test} p = {p:.2f}", fontsize=10)
        ax.tick_params(labelsize=8)
    axes.flat[0].legend(fontsize=8, frameon=False)
    axes.flat[-1].legend(fontsize=8, frameon=False)
    title = f"{N:,} draws each from rs.random, float32 (poisson: int32), against scipy.stats"
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, **PNG)
    plt.close(fig)


FIGURES = {"derivation": derivation, "distributions": distributions}


def main(names: list[str]) -> None:
    for name in names or FIGURES:
        FIGURES[name](HERE / f"{name}.png")
        print(HERE / f"{name}.png")


if __name__ == "__main__":
    main(sys.argv[1:])  # figure names, or none for all
