"""``adapool demo``: runs on a small setting, and its numbers are those of the actual outputs.

Every number in results.json is recomputed here from the image file and the
library's public functions (or plain NumPy for average and max), not from the
demo's own helpers.
"""
import csv
import json
import os

import numpy as np
import pytest

pytest.importorskip("skimage", reason="the demo needs scikit-image (a runtime dependency)")
from PIL import Image  # noqa: E402  (scikit-image brings pillow)
from skimage.io import imread, imsave  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402

import adapool_core as ap  # noqa: E402
from adapool_core.cli import demo  # noqa: E402
from adapool_core.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def texture_png(tmp_path_factory):
    """A 48 x 64 gray PNG with edges and texture (a crop of a shipped image)."""
    path = tmp_path_factory.mktemp("img") / "crop.png"
    camera = imread(demo._shipped_path("camera"))
    imsave(path, camera[200:248, 220:284], check_contrast=False)
    return str(path)


@pytest.fixture(scope="module")
def small_run(texture_png, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    argv = ["demo", "--images", texture_png, "--kernel", "2", "--fit-steps", "4", "--no-clip", "--out", str(out)]
    assert main(argv) == 0
    with open(out / "results.json") as f:
        return out, json.load(f)


def _recompute(method, x, k, beta=None):
    """(nearest, unpooled) reconstructions of x (1, 1, H, W), computed independently of the demo."""
    n, c, h, w = x.shape
    blocks = x.reshape(n, c, h // k, k, w // k, k)
    if method == "average":
        y = blocks.mean(axis=(3, 5))
    elif method == "max":
        y = blocks.max(axis=(3, 5))
    else:
        fn = {"em": ap.empool2d, "edscw": ap.edscwpool2d, "idw": ap.idwpool2d}.get(method)
        y, wts = fn(x, k, return_mask=True) if fn else ap.adapool2d(x, beta, k, return_mask=True)
    nearest = np.kron(y, np.ones((k, k), y.dtype))
    if method == "average":
        return nearest, nearest
    if method == "max":
        # Max-unpooling: the max back at its (first) argmax, zeros elsewhere.
        flat = blocks.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // k, w // k, k * k)
        onehot = np.arange(k * k) == flat.argmax(-1)[..., None]
        keep = onehot.reshape(n, c, h // k, w // k, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(x.shape)
        return nearest, np.where(keep, x, 0)
    return nearest, ap.adaunpool2d(y, wts, k, normalize="window")


def test_json_numbers_are_the_outputs(small_run, texture_png):
    out, result = small_run
    image = imread(texture_png).astype(np.float64) / 255.0
    x = image[None, None].astype(np.float32)
    betas = np.load(out / "fitted-beta.npz")
    rows = result["rows"]
    assert [r["method"] for r in rows] == list(demo.METHODS)
    for row in rows:
        beta = 0.5 if row["method"] == "ada" else betas[f"{row['image']} k=2"] if row["method"] == "ada-fit" else None
        nearest, unpooled = _recompute(row["method"], x, 2, beta)
        for name, rec in (("nearest", nearest), ("unpool", unpooled)):
            rec = np.asarray(rec, np.float64)[0, 0]
            psnr = peak_signal_noise_ratio(image, rec, data_range=1.0)
            ssim = structural_similarity(image.astype(np.float32), rec.astype(np.float32), data_range=1.0)
            assert row[f"psnr_{name}"] == pytest.approx(psnr, abs=1e-6), (row["method"], name)
            assert row[f"ssim_{name}"] == pytest.approx(ssim, abs=1e-6), (row["method"], name)


def test_fitted_beta_keeps_most(small_run):
    """The fit starts from the best of b = 0, 0.5, 1 per location and only keeps improvements."""
    _, result = small_run
    by = {r["method"]: r for r in result["rows"]}
    for start in ("em", "edscw", "ada"):
        assert by["ada-fit"]["psnr_unpool"] >= by[start]["psnr_unpool"] - 1e-9
    (fit,) = result["fits"]
    errors = fit["error_by_step"]
    assert len(errors) == 4 + 1 and all(b <= a for a, b in zip(errors, errors[1:]))
    assert 0 <= fit["beta_mean"] <= 1


def test_csv_table_and_figure(small_run):
    out, result = small_run
    with open(out / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(result["rows"])
    for line, row in zip(table, result["rows"]):
        assert line["method"] == row["method"]
        assert float(line["psnr_unpool"]) == pytest.approx(row["psnr_unpool"], rel=1e-12)
    assert result["figures"] == ["crops-crop-png.png"]
    with Image.open(out / "crops-crop-png.png") as fig:
        fig.verify()
    with Image.open(out / "crops-crop-png.png") as fig:
        pixels = np.asarray(fig)
    assert pixels.ndim == 3 and pixels.shape[0] > len(demo.METHODS) * 48
    assert pixels.std() > 10  # not a blank canvas
    assert result["command"].startswith("adapool demo --images")


def test_table_is_printed(texture_png, tmp_path, capsys):
    main(["demo", "--images", texture_png, "--kernel", "4", "--methods", "em", "max", "--no-clip",
          "--scale", "3", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert "input scale 3" in text and "eM (SoftPool)" in text and "max" in text
    with open(tmp_path / "results.json") as f:
        rows = json.load(f)["rows"]
    assert [(r["method"], r["kernel"], r["scale"]) for r in rows] == [("em", 4, 3.0), ("max", 4, 3.0)]


@pytest.mark.parametrize("argv, words", [
    (["--images", "/no/such/file.png"], ["--images", "/no/such/file.png"]),
    (["--kernel", "1"], ["--kernel", "[1]"]),
    (["--scale", "0"], ["--scale", "0"]),
    (["--fit-steps", "100000"], ["--fit-steps", "100000"]),
    (["--methods", "median"], ["--methods", "median"]),
])
def test_bad_options_are_clear_errors(argv, words, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--no-clip", "--out", str(tmp_path)] + argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err, err


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # imageio tries its legacy plugins on the bad file
def test_unreadable_and_too_small_images(tmp_path, capsys):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    tiny = tmp_path / "tiny.png"
    imsave(tiny, np.zeros((5, 9), np.uint8), check_contrast=False)
    for path, word in ((text, "cannot read"), (tiny, "5x9")):
        with pytest.raises(SystemExit):
            main(["demo", "--images", str(path), "--no-clip", "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert "--images" in err and word in err, err


def test_same_file_name_in_two_folders_stays_apart(texture_png, tmp_path):
    other = tmp_path / "crop.png"
    imsave(other, np.full((16, 16), 128, np.uint8), check_contrast=False)
    names = [p.name for p in demo.user_images([texture_png, str(other)])]
    assert names == ["crop.png", "crop.png (2)"]


def test_shipped_images_need_no_download():
    import skimage

    pictures = demo.shipped_images()
    assert [p.name for p in pictures] == list(demo.GRAY_IMAGES) + [f"{demo.COLOUR_IMAGE} (RGB)"]
    for picture in pictures:
        assert picture.pixels.dtype == np.float64 and 0 <= picture.pixels.min() and picture.pixels.max() <= 1
        assert picture.pixels.shape[0] == (3 if "RGB" in picture.name else 1)
    folder = os.path.join(os.path.dirname(skimage.__file__), "data")
    assert all(os.path.isfile(os.path.join(folder, f"{n}.png")) for n in demo.GRAY_IMAGES)


def test_clip_is_pooled_in_3d():
    clip = demo.synthetic_clip(frames=16, side=32)
    assert clip.pixels.shape == (1, 16, 32, 32) and clip.d == 3
    # Frame t is frame 0 moved by (2, 3) * t pixels.
    np.testing.assert_array_equal(clip.pixels[0, 1, :-2, :-3], clip.pixels[0, 0, 2:, 3:])
    config = demo.DemoConfig(fit_steps=2)
    rows, reference, shown, fit = demo.evaluate(clip, 2, config)
    assert [r["method"] for r in rows] == list(demo.METHODS) and all(r["dims"] == 3 for r in rows)
    assert fit["beta"].shape == (1, 8, 16, 16)
    x = reference[None].astype(np.float32)
    y, w = ap.empool3d(x, 2, return_mask=True)
    unpooled = ap.adaunpool3d(y, w, 2, normalize="window")[0].astype(np.float64)
    em = next(r for r in rows if r["method"] == "em")
    assert em["psnr_unpool"] == pytest.approx(peak_signal_noise_ratio(reference, unpooled, data_range=1.0), abs=1e-6)
    assert shown["em"][1].shape == reference.shape


def test_round_trip_gradient_matches_finite_differences():
    """Both paths of d(error)/d(beta): through y (adapool's backward) and through the weights."""
    rng = np.random.default_rng(0)
    k = 2
    x = (3.0 * rng.random((1, 2, 6, 8)))
    parts = ap.edscwpool2d(x, k, return_mask=True) + ap.empool2d(x, k, return_mask=True)
    beta = rng.uniform(0.1, 0.9, (1, 2, 3, 4))
    _, grad = demo.round_trip_gradient(x, beta, parts, k, 2)
    total = lambda b: float(demo.round_trip_gradient(x, b, parts, k, 2)[0].sum())  # noqa: E731
    eps = 1e-6
    fd = np.zeros_like(beta)
    for idx in np.ndindex(beta.shape):
        up, down = beta.copy(), beta.copy()
        up[idx] += eps
        down[idx] -= eps
        fd[idx] = (total(up) - total(down)) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)


def test_fit_improves_on_its_start_where_the_optimum_is_inside():
    """At scale 3 some windows have their best beta strictly inside (0, 1): descent must find lower error."""
    rng = np.random.default_rng(1)
    k = 2
    x = (3.0 * rng.random((1, 1, 16, 16))).astype(np.float32)
    parts = ap.edscwpool2d(x, k, return_mask=True) + ap.empool2d(x, k, return_mask=True)
    beta, errors = demo.fit_beta(x, k, 2, 20, parts)
    assert errors[-1] < errors[0] * (1 - 1e-3)
    starts = [demo._per_location(demo.round_trip_error(x, np.full(beta.shape, b, np.float32), parts, k, 2)[0], k, 2)
              for b in (0.0, 0.5, 1.0)]
    final = demo._per_location(demo.round_trip_error(x, beta, parts, k, 2)[0], k, 2)
    assert (final <= np.minimum.reduce(starts) * (1 + 1e-6)).all()
    assert ((beta > 0) & (beta < 1)).any()
