"""Throughput against library size (matplotlib, optional)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.common import PLOT_LABELS, TARGET_FIRST_BOOKS_S, TARGET_NOCHANGE_FILES_S


def render_plot(report: dict[str, Any], path: Path) -> bool:
    """Throughput against library size; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    variants = report["variants"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    styles = {"naive": ("tab:red", "o"), "w1": ("tab:orange", "s"), "default": ("tab:blue", "D")}
    for name, (color, marker) in styles.items():
        points = sorted((v["size"], v["median"]["rate"]) for v in variants if v["variant"] == name)
        if points:
            left.plot(
                *zip(*points, strict=True),
                marker=marker,
                color=color,
                label=PLOT_LABELS[name],
            )
    for v in variants:
        if v["variant"] == "placeholders":
            left.scatter(
                [v["size"]],
                [v["median"]["rate"]],
                marker="o",
                facecolors="none",
                edgecolors="tab:blue",
                label="shelfscan, defaults: placeholders (empty files → error rows)",
            )
        if v["variant"] == "audio":
            left.scatter(
                [v["size"]],
                [v["median"]["rate"]],
                marker="^",
                color="tab:green",
                label="shelfscan, defaults: audio files (files/s)",
            )
    left.axhline(
        TARGET_FIRST_BOOKS_S,
        color="grey",
        linestyle="--",
        linewidth=1,
        label="target 2,000 books/s",
    )
    left.set(
        xscale="log",
        yscale="log",
        xlabel="library size (files)",
        ylabel="first scan, books/s",
        title="First full scan",
    )
    left.legend(fontsize=7)
    for name, color, marker in (
        ("nochange", "tab:purple", "D"),
        ("changed1", "tab:brown", "s"),
        ("discover", "tab:cyan", "o"),
    ):
        points = sorted((v["size"], v["median"]["rate"]) for v in variants if v["variant"] == name)
        if points:
            right.plot(
                *zip(*points, strict=True),
                marker=marker,
                color=color,
                label=PLOT_LABELS[name],
            )
    right.axhline(
        TARGET_NOCHANGE_FILES_S,
        color="grey",
        linestyle="--",
        linewidth=1,
        label="target 25,000 files/s",
    )
    right.set(
        xscale="log", yscale="log", xlabel="library size (files)", ylabel="files/s", title="Rescans"
    )
    right.legend(fontsize=7)
    fig.suptitle(
        f"shelfscan throughput vs library size — {report['machine']['cores']} cores, "
        f"medians of {report['params']['rounds']} interleaved rounds",
        fontsize=10,
    )
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return True
