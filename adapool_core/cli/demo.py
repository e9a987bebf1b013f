"""``adapool demo``: how much of an image each pooling keeps, and how much its
own weights bring back.

For every image and kernel size ``k`` (stride ``k``), each method pools the
image; two reconstructions at the input size are compared with the input by
PSNR and SSIM (scikit-image):

- ``nearest``: the pooled map upsampled by nearest neighbour (what the pooled
  values alone carry);
- ``unpool``: the pooled map unpooled with the method's own weights,
  ``adaunpool{d}d(..., normalize="window")``; for max pooling, max-unpooling
  (one-hot weights at the argmax, ``normalize="sum"``); for average pooling its
  uniform weights (which is nearest-neighbour upsampling again).

adaPool runs twice: with ``beta = 0.5`` everywhere, and with one ``beta`` per
pooled location fitted to the image (:func:`fit_beta`).  The fitted map is
side information as large as the pooled map, so that row is an upper bound
for what adaPool's weights can restore, not a fair compression comparison.

Everything is computed by the library's public functions; NumPy does the
average and max pooling, the nearest upsampling and the bookkeeping.
"""
from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .._api import FUNCTIONS

# Images that scikit-image ships inside its wheel (read from its data folder:
# no download, no pooch).  The colour one is pooled per channel.
GRAY_IMAGES = ("camera", "astronaut", "coffee", "brick", "grass", "gravel")
COLOUR_IMAGE = "astronaut"

# --methods key -> label in the table.
METHODS = {
    "average": "average",
    "max": "max",
    "em": "eM (SoftPool)",
    "edscw": "eDSCW",
    "idw": "IDW",
    "ada": "adaPool b=0.5",
    "ada-fit": "adaPool fitted b",
}
MAX_FIT_STEPS = 500
SSIM_WINDOW = 7  # skimage's default: every side must be at least this


class DemoError(ValueError):
    """A bad demo argument; the message names the option."""


# Import name -> distribution of what the demo needs beyond the core package (the `demo` extra).
DEMO_DEPENDENCIES = {"skimage": "scikit-image", "PIL": "pillow"}
DEMO_INSTALL = 'pip install "adapool-core[demo]"  (from a source checkout: pip install ".[demo]")'


class MissingDependencyError(RuntimeError):
    """The demo's extra packages are not installed; the message says what to install."""


def require_dependencies() -> None:
    """Raise :class:`MissingDependencyError` naming every missing package of the `demo` extra."""
    import importlib

    missing = []
    for module, distribution in DEMO_DEPENDENCIES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(distribution)
    if missing:
        raise MissingDependencyError(
            f"adapool demo needs {' and '.join(missing)}, which the core package does not install "
            f"(its only dependencies are numpy and numba). Install the demo extra: {DEMO_INSTALL}")


@dataclass
class DemoConfig:
    images: tuple[str, ...] | None = None  # user files; None: the shipped set
    kernels: tuple[int, ...] = (2, 4)
    scale: float = 1.0
    methods: tuple[str, ...] = tuple(METHODS)
    out: str = "adapool-demo"
    fit_steps: int = 6
    clip: bool = True
    clip_frames: int = 16
    clip_side: int = 160
    progress: bool = True
    command: str | None = None  # how the run was asked for, recorded in results.json


@dataclass
class Picture:
    """An image (or clip) as (C, *S) float64 in [0, 1]; C is 1 (gray) or 3 (colour)."""

    name: str
    pixels: np.ndarray
    kernels: tuple[int, ...] = field(default=())

    @property
    def d(self) -> int:
        return self.pixels.ndim - 1


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

def _as_unit_float(image, source: str) -> np.ndarray:
    """Gray float64 in [0, 1] from any 2-D or RGB(A) image array."""
    from skimage.color import rgb2gray, rgba2rgb
    from skimage.util import img_as_float

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 4:
        image = rgba2rgb(image)
    if image.ndim == 3 and image.shape[-1] == 3:
        image = rgb2gray(image)
    if image.ndim != 2:
        raise DemoError(f"--images: expected a gray or RGB(A) image, got {source} with shape {image.shape}")
    image = img_as_float(image).astype(np.float64)
    low, high = float(image.min()), float(image.max())
    if low < 0 or high > 1:  # float files may hold any range: map it onto [0, 1]
        image = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return image


def _shipped_path(name: str) -> str:
    import skimage

    path = os.path.join(os.path.dirname(skimage.__file__), "data", f"{name}.png")
    if not os.path.isfile(path):
        raise DemoError(f"scikit-image {skimage.__version__} does not ship {name}.png in {os.path.dirname(path)}")
    return path


def shipped_images() -> list[Picture]:
    """The default set: gray versions of the shipped images, plus one colour image."""
    from skimage.io import imread
    from skimage.util import img_as_float

    pictures = [Picture(name, _as_unit_float(imread(_shipped_path(name)), name)[None]) for name in GRAY_IMAGES]
    rgb = img_as_float(imread(_shipped_path(COLOUR_IMAGE))[..., :3]).astype(np.float64)
    pictures.append(Picture(f"{COLOUR_IMAGE} (RGB)", np.moveaxis(rgb, -1, 0)))
    return pictures


def user_images(paths) -> list[Picture]:
    """Gray float images from the user's files; a clear error names --images."""
    from skimage.io import imread

    pictures = []
    for path in paths:
        if not os.path.isfile(path):
            raise DemoError(f"--images: no such file: {path!r}")
        try:
            image = imread(path)
        except Exception as err:  # any reader failure is the same user error
            raise DemoError(f"--images: cannot read {path!r} as an image ({type(err).__name__}: {err})") from None
        name = os.path.basename(path)
        if any(p.name == name for p in pictures):  # same file name in two folders: keep results apart
            name = f"{name} ({len(pictures) + 1})"
        pictures.append(Picture(name, _as_unit_float(image, repr(path))[None]))
    return pictures


def synthetic_clip(frames: int = 16, side: int = 160, shift=(2, 3)) -> Picture:
    """A camera crop moving by ``shift`` pixels per frame: (1, frames, side, side)."""
    from skimage.io import imread

    camera = _as_unit_float(imread(_shipped_path("camera")), "camera")
    top, left = 120, 150
    if top + side + frames * shift[0] > camera.shape[0] or left + side + frames * shift[1] > camera.shape[1]:
        raise DemoError(f"clip of {frames} frames of {side}x{side} does not fit in camera {camera.shape}")
    clip = np.stack([camera[top + t * shift[0]:top + t * shift[0] + side,
                            left + t * shift[1]:left + t * shift[1] + side] for t in range(frames)])
    return Picture(f"camera clip {frames}x{side}x{side}", clip[None], kernels=(2,))


# ---------------------------------------------------------------------------
# Pooling, unpooling, measures
# ---------------------------------------------------------------------------

def _lib(name: str, d: int):
    return FUNCTIONS[f"{name}{d}d"]


def crop_to(pixels: np.ndarray, k: int) -> np.ndarray:
    """Drop the trailing cells that no window of a k-tiling covers."""
    return pixels[(slice(None),) + tuple(slice(0, n - n % k) for n in pixels.shape[1:])]


def tiles(x: np.ndarray, k: int, d: int) -> np.ndarray:
    """The k**d windows of a tiling (stride = kernel) as a last axis: (N, C, *O, k**d)."""
    lead = x.shape[:2]
    pooled = tuple(n // k for n in x.shape[2:])
    split = x.reshape(lead + sum(((o, k) for o in pooled), ()))
    order = (0, 1) + tuple(2 + 2 * i for i in range(d)) + tuple(3 + 2 * i for i in range(d))
    return split.transpose(order).reshape(lead + pooled + (k ** d,))


def upsample_nearest(y: np.ndarray, k: int, d: int) -> np.ndarray:
    for axis in range(y.ndim - d, y.ndim):
        y = np.repeat(y, k, axis=axis)
    return y


def pool_with_weights(method: str, x: np.ndarray, k: int, d: int, beta=None, pooled=None):
    """(y, w, normalize) of one method on x (N, C, *S): w as ``return_mask=True`` gives it.

    ``pooled`` may hold ``(y, w)`` already computed by the library for this method."""
    if method in ("average", "max"):
        windows = tiles(x, k, d)
        weight_shape = windows.shape[:-1] + (k,) * d
        if method == "average":
            w = np.full(windows.shape, 1.0 / k ** d, dtype=x.dtype)
            return windows.mean(-1).astype(x.dtype), w.reshape(weight_shape), "window"
        pick = windows.argmax(-1)
        w = (np.arange(k ** d) == pick[..., None]).astype(x.dtype)
        return windows.max(-1), w.reshape(weight_shape), "sum"  # max-unpooling
    if pooled is not None:
        y, w = pooled
    elif method in ("ada", "ada-fit"):
        y, w = _lib("adapool", d)(x, 0.5 if beta is None else beta, k, return_mask=True)
    else:
        y, w = _lib(f"{method}pool", d)(x, k, return_mask=True)
    return y, w, "window"


def measures(reference: np.ndarray, result: np.ndarray) -> tuple[float, float]:
    """(PSNR in dB, SSIM) of result against reference, both (C, *S) with data range 1.

    PSNR in float64; SSIM in float32 (scikit-image keeps float32, half the
    memory traffic; the values agree with float64 to about 1e-6)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    psnr = peak_signal_noise_ratio(np.asarray(reference, np.float64), np.asarray(result, np.float64),
                                   data_range=1.0)
    reference = np.asarray(reference, dtype=np.float32)
    result = np.asarray(result, dtype=np.float32)
    if reference.shape[0] == 1:
        ssim = structural_similarity(reference[0], result[0], data_range=1.0)
    else:
        ssim = structural_similarity(reference, result, data_range=1.0, channel_axis=0)
    return float(psnr), float(ssim)


# ---------------------------------------------------------------------------
# Fitting beta
# ---------------------------------------------------------------------------

def _blend(beta, parts, d: int):
    """adaPool's y and w from eDSCW's and eM's: ``b*D + (1-b)*M`` (``parts = (yD, wD, yM, wM)``)."""
    y_d, w_d, y_m, w_m = parts
    b_cells = beta.reshape(beta.shape + (1,) * d)
    return beta * y_d + (1 - beta) * y_m, b_cells * w_d + (1 - b_cells) * w_m


def round_trip_error(x, beta, parts, k: int, d: int):
    """(error map x_hat - x, y, w) of pool-then-adaUnPool with normalize='window'."""
    y, w = _blend(beta, parts, d)
    return _lib("adaunpool", d)(y, w, k, normalize="window") - x, y, w


def _per_location(err, k: int, d: int):
    """0.5 * sum of squares of err over each window: the error of each pooled location."""
    return 0.5 * (tiles(err, k, d).astype(np.float64) ** 2).sum(-1)


def round_trip_gradient(x, beta, parts, k: int, d: int):
    """Per-location round-trip error and its exact gradient with respect to beta.

    The round trip is ``x_hat = adaunpool(y(b), w(b), normalize="window")``
    with ``y = b*yD + (1-b)*yM`` and ``w = b*wD + (1-b)*wM`` (adaPool's
    definition; ``parts = (yD, wD, yM, wM)`` from eDSCW and eM pooling) and the
    error ``L = 0.5 * sum (x_hat - x)^2`` per window.  ``dL/db`` has two paths,
    through y and through w, both from the library: ``adaunpool_backward``
    with ``return_grad_w=True`` gives ``dL/dy`` and ``dL/dw``, and
    ``adapool_backward`` with ``grad_w=`` turns both into ``dL/db``.

    Returns (loss per pooled location, gradient), both of beta's shape.
    """
    err, y, w = round_trip_error(x, beta, parts, k, d)
    grad_y, grad_w = FUNCTIONS[f"adaunpool{d}d_backward"](err, y, w, k, normalize="window", return_grad_w=True)
    _, grad = FUNCTIONS[f"adapool{d}d_backward"](grad_y, x, beta, k, grad_w=grad_w)
    return _per_location(err, k, d), grad


def fit_beta(x, k: int, d: int, steps: int, parts):
    """One beta per pooled location minimising the pool-then-unpool error.

    Starts at the best of b in {0, 0.5, 1} per location (eM, the paper's 0.5,
    eDSCW), then projected gradient descent on [0, 1] with a Barzilai-Borwein
    step per location (the error of one location depends on its own beta
    only, since windows tile the image).  Returns (beta, total error per
    step) where beta is the best seen at each location, so the fit is never
    worse than any of the three starting values.
    """
    best_beta, best_loss = None, np.inf
    for start in (0.0, 0.5, 1.0):
        beta = np.full(parts[0].shape, start, dtype=x.dtype)
        loss = _per_location(round_trip_error(x, beta, parts, k, d)[0], k, d)
        best_beta = beta if best_beta is None else np.where(loss < best_loss, beta, best_beta)
        best_loss = np.minimum(loss, best_loss)
    beta = best_beta
    _, grad = round_trip_gradient(x, beta, parts, k, d)
    history = [float(best_loss.sum())]
    # First move at most 0.05 per location; then the secant of the gradient.
    step = 0.05 / np.maximum(np.abs(grad), 1e-12)
    for _ in range(steps):
        moved = np.clip(beta - step * grad, 0, 1).astype(x.dtype)
        loss, new_grad = round_trip_gradient(x, moved, parts, k, d)
        delta_b = (moved - beta).astype(np.float64)
        delta_g = (new_grad - grad).astype(np.float64)
        curvature = delta_b * delta_g
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(curvature > 0, delta_b * delta_b / curvature, step)
        best_beta = np.where(loss < best_loss, moved, best_beta)
        best_loss = np.minimum(loss, best_loss)
        beta, grad = moved, new_grad
        history.append(float(best_loss.sum()))
    return best_beta, history


# ---------------------------------------------------------------------------
# One image
# ---------------------------------------------------------------------------

def evaluate(picture: Picture, k: int, config: DemoConfig):
    """Rows of measures for one picture and kernel; reconstructions and fit for the figure/files."""
    d = picture.d
    reference = crop_to(picture.pixels, k)
    x = (config.scale * reference)[None].astype(np.float32)
    parts, pooled = None, {}
    if "ada-fit" in config.methods:  # the fit blends eDSCW and eM: pool each once
        pooled["edscw"] = _lib("edscwpool", d)(x, k, return_mask=True)
        pooled["em"] = _lib("empool", d)(x, k, return_mask=True)
        parts = pooled["edscw"] + pooled["em"]
    rows, shown, fit = [], {}, None
    for method in config.methods:
        beta = None
        if method == "ada-fit":
            beta, history = fit_beta(x, k, d, config.fit_steps, parts)
            fit = {"beta": beta[0], "error_by_step": history, "beta_mean": float(beta.mean()),
                   "steps": config.fit_steps}
        y, w, normalize = pool_with_weights(method, x, k, d, beta, pooled.get(method))
        nearest = upsample_nearest(y, k, d)[0] / config.scale
        unpooled = _lib("adaunpool", d)(y, w, k, normalize=normalize)[0] / config.scale
        psnr_n, ssim_n = measures(reference, nearest)
        # Average pooling's unpooling is nearest upsampling again: measure once.
        psnr_u, ssim_u = (psnr_n, ssim_n) if np.array_equal(nearest, unpooled) else measures(reference, unpooled)
        rows.append({
            "image": picture.name, "dims": d, "shape": list(reference.shape[1:]), "channels": reference.shape[0],
            "kernel": k, "scale": config.scale, "method": method, "label": METHODS[method],
            "unpool": "max-unpooling" if method == "max" else "window",
            "psnr_nearest": psnr_n, "ssim_nearest": ssim_n, "psnr_unpool": psnr_u, "ssim_unpool": ssim_u,
        })
        shown[method] = (y[0] / config.scale, unpooled)
    return rows, reference, shown, fit


# ---------------------------------------------------------------------------
# Figure
# ---------------------------------------------------------------------------

CROP = 96
ZOOM = 2


def _crop_origin(reference: np.ndarray, step: int) -> tuple[int, int]:
    """Top-left of the CROP x CROP square with the most detail (gradient energy), on a step grid."""
    gray = reference.mean(0)
    h, w = gray.shape
    if h <= CROP or w <= CROP:
        return 0, 0
    energy = np.abs(np.diff(gray, axis=0))[:, :-1] + np.abs(np.diff(gray, axis=1))[:-1]
    best, origin = -1.0, (0, 0)
    for top in range(0, h - CROP, step):
        for left in range(0, w - CROP, step):
            e = float(energy[top:top + CROP - 1, left:left + CROP - 1].sum())
            if e > best:
                best, origin = e, (top, left)
    return origin


def _tile(image: np.ndarray) -> np.ndarray:
    """(C, h, w) in [0, 1] to a zoomed (h*ZOOM, w*ZOOM, 3) uint8 tile."""
    rgb = np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image
    rgb = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.moveaxis(rgb, 0, -1).repeat(ZOOM, 0).repeat(ZOOM, 1)


def figure(name: str, reference: np.ndarray, shown_by_k: dict, methods, path: str) -> None:
    """PNG grid: one row per method; input, then per kernel the pooled map and the unpooled image."""
    from PIL import Image, ImageDraw

    if reference.ndim == 4:  # clip: show the middle frame
        mid = reference.shape[1] // 2
        reference = reference[:, mid]
        shown_by_k = {k: {m: (y[:, mid // k], u[:, mid]) for m, (y, u) in shown.items()}
                      for k, shown in shown_by_k.items()}
    kernels = sorted(shown_by_k)
    unit = math.lcm(*kernels)  # crop edges on every kernel's window grid
    top, left = _crop_origin(reference, unit * max(1, 16 // unit))
    side = min(CROP, *reference.shape[1:])
    side -= side % unit
    cells = lambda a, k=1: a[:, top // k:(top + side) // k, left // k:(left + side) // k]  # noqa: E731
    tile = side * ZOOM
    gap, label_w, head_h = 4, 120, 34
    columns = ["input"] + [c for k in kernels for c in (f"pooled k={k}", f"unpooled k={k}")]
    width = label_w + len(columns) * (tile + gap)
    height = head_h + len(methods) * (tile + gap)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), name, fill="black")
    for j, title in enumerate(columns):
        draw.text((label_w + j * (tile + gap), head_h - 14), title, fill="black")
    for i, method in enumerate(methods):
        y0 = head_h + i * (tile + gap)
        draw.text((4, y0 + tile // 2 - 6), METHODS[method], fill="black")
        images = [cells(reference)]
        for k in kernels:
            pooled, unpooled = shown_by_k[k][method]
            images += [upsample_nearest(cells(pooled, k), k, 2), cells(unpooled)]
        for j, image in enumerate(images):
            canvas.paste(Image.fromarray(_tile(image)), (label_w + j * (tile + gap), y0))
    canvas.save(path, compress_level=1)  # fast; the crops are small anyway


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

class Progress:
    """A one-line progress bar on stderr (only on a terminal)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.start = total, 0, time.perf_counter()
        self.enabled = enabled and sys.stderr.isatty()

    def show(self, what: str) -> None:
        if self.enabled:
            filled = int(30 * self.done / max(self.total, 1))
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} "
                             f"{time.perf_counter() - self.start:5.1f}s {what[:40]:<40}")
            sys.stderr.flush()

    def step(self, what: str) -> None:
        self.done += 1
        self.show(what)

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 90 + "\r")
            sys.stderr.flush()


COLUMNS = ("image", "kernel", "label", "psnr_nearest", "ssim_nearest", "psnr_unpool", "ssim_unpool")


def format_table(rows, scale: float) -> str:
    """Every row, then per kernel the mean over the 2-D images."""
    head = (f"{'image':<22} {'k':>2}  {'method':<17} {'nearest':>14}   {'unpool (own weights)':>20}\n"
            f"{'':<22} {'':>2}  {'':<17} {'PSNR':>7} {'SSIM':>6}   {'PSNR':>13} {'SSIM':>6}")
    line = "{:<22} {:>2}  {:<17} {:7.2f} {:6.3f}   {:13.2f} {:6.3f}"
    out = [f"adaPool demo: stride = kernel, input scale {scale:g} (images in [0, 1] times {scale:g} "
           f"before pooling, measured after dividing back); PSNR in dB, SSIM (scikit-image)", "", head]
    for row in rows:
        out.append(line.format(row["image"][:22], row["kernel"], row["label"], row["psnr_nearest"],
                               row["ssim_nearest"], row["psnr_unpool"], row["ssim_unpool"]))
    flat = [r for r in rows if r["dims"] == 2]
    if flat:
        out += ["", f"mean over the {len({r['image'] for r in flat})} 2-D images", head]
        for k in sorted({r["kernel"] for r in flat}):
            for label in dict.fromkeys(r["label"] for r in flat):
                group = [r for r in flat if r["kernel"] == k and r["label"] == label]
                if group:
                    out.append(line.format("mean", k, label, *(float(np.mean([r[c] for r in group]))
                                                               for c in COLUMNS[3:])))
    return "\n".join(out)


def _finite(value):
    return value if not isinstance(value, float) or math.isfinite(value) else None


def check_config(config: DemoConfig) -> None:
    unknown = [m for m in config.methods if m not in METHODS]
    if unknown or not config.methods:
        raise DemoError(f"--methods: expected some of {', '.join(METHODS)}, got {list(config.methods)}")
    if not config.kernels or any(int(k) != k or k < 2 for k in config.kernels):
        raise DemoError(f"--kernel: expected integers >= 2, got {list(config.kernels)}")
    if not (math.isfinite(config.scale) and config.scale > 0):
        raise DemoError(f"--scale: expected a finite number > 0, got {config.scale}")
    if not 0 <= config.fit_steps <= MAX_FIT_STEPS:
        raise DemoError(f"--fit-steps: expected 0 to {MAX_FIT_STEPS}, got {config.fit_steps}")


def run(config: DemoConfig, stream=None) -> dict:
    """Run the demo, write results.json, results.csv, fitted-beta.npz and crops-*.png into config.out."""
    check_config(config)
    require_dependencies()
    started = time.perf_counter()
    pictures = user_images(config.images) if config.images else shipped_images()
    need = max(max(config.kernels), SSIM_WINDOW)
    for picture in pictures:
        picture.kernels = tuple(sorted(set(config.kernels)))
        small = [n for n in picture.pixels.shape[1:] if n < need]
        if small:
            raise DemoError(f"--images: {picture.name} is {'x'.join(map(str, picture.pixels.shape[1:]))} pixels; "
                            f"the demo needs at least {need} per side (kernel {max(config.kernels)}, SSIM window "
                            f"{SSIM_WINDOW})")
    if config.clip:
        pictures.append(synthetic_clip(config.clip_frames, config.clip_side))
    os.makedirs(config.out, exist_ok=True)
    progress = Progress(sum(len(p.kernels) for p in pictures), config.progress)
    rows, fits, betas, figures = [], [], {}, []
    for picture in pictures:
        shown_by_k, reference = {}, None
        for k in picture.kernels:
            progress.show(f"{picture.name} k={k}")
            picture_rows, reference_k, shown, fit = evaluate(picture, k, config)
            rows += picture_rows
            shown_by_k[k] = shown
            reference = reference_k if reference is None else reference
            if fit is not None:
                key = f"{picture.name} k={k}"
                betas[key] = fit.pop("beta")
                fits.append({"image": picture.name, "kernel": k, **fit})
            progress.step(f"{picture.name} k={k}")
        # Crop every reconstruction to the smallest common size (kernels crop differently).
        common = tuple(min(s[1].shape[i + 1] for shown in shown_by_k.values() for s in shown.values())
                       for i in range(picture.d))
        reference = reference[(slice(None),) + tuple(slice(0, n) for n in common)]
        slug = "".join(c if c.isalnum() else "-" for c in picture.name).strip("-")
        path = os.path.join(config.out, f"crops-{slug}.png")
        figure(picture.name, reference, shown_by_k, config.methods, path)
        figures.append(path)
    progress.close()
    seconds = time.perf_counter() - started
    result = {
        "command": config.command,
        "scale": config.scale, "kernels": list(config.kernels), "methods": list(config.methods),
        "fit_steps": config.fit_steps, "seconds": round(seconds, 2),
        "rows": [{k: _finite(v) for k, v in row.items()} for row in rows],
        "fits": fits, "figures": [os.path.basename(p) for p in figures],
    }
    with open(os.path.join(config.out, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(config.out, "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[c for c in rows[0] if c != "shape"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    np.savez_compressed(os.path.join(config.out, "fitted-beta.npz"), **betas)
    stream = sys.stdout if stream is None else stream
    stream.write(format_table(rows, config.scale) + "\n")
    stream.write(f"\n{len(rows)} rows in {seconds:.1f} s; written to {os.path.abspath(config.out)}: "
                 f"results.json, results.csv, fitted-beta.npz, {', '.join(os.path.basename(p) for p in figures)}\n")
    return result
