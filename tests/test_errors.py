"""Each error of the spec's list: the documented exception, a message naming
the argument, the expected and the given value."""
import numpy as np
import pytest

import adapool_core as ap

X = np.zeros((2, 3, 8, 8), np.float32)


@pytest.mark.parametrize("call,exc,words", [
    (lambda: ap.adapool2d(np.zeros((8, 8), np.float32), 0.5), ValueError, ["x:", "3-D", "4-D", "2-D"]),
    (lambda: ap.empool1d(np.zeros((1, 2, 3, 8)), 2), ValueError, ["x:", "4-D", "(1, 2, 3, 8)"]),
    (lambda: ap.adapool2d(X.astype(np.int32), 0.5), TypeError, ["x:", "floating", "int32"]),
    (lambda: ap.empool2d(X.astype(bool)), TypeError, ["x:", "bool"]),
    (lambda: ap.empool2d(X.astype(np.complex64)), TypeError, ["x:", "complex64"]),
    (lambda: ap.empool2d(X, kernel_size=9), ValueError, ["kernel_size:", "(8, 8)", "(9, 9)"]),
    (lambda: ap.empool2d(X, kernel_size=3, padding=2), ValueError, ["padding:", "(1, 1)", "(2, 2)"]),
    (lambda: ap.empool2d(X, kernel_size=2, padding=-1), ValueError, ["padding:", "(-1, -1)"]),
    (lambda: ap.empool2d(X, stride=0), ValueError, ["stride:", "positive", "(0, 0)"]),
    (lambda: ap.empool2d(X, stride=(2, -1)), ValueError, ["stride:", "(2, -1)"]),
    (lambda: ap.empool2d(X, kernel_size=0), ValueError, ["kernel_size:", ">= 1"]),
    (lambda: ap.empool2d(X, kernel_size=(2, 2, 2)), ValueError, ["kernel_size:", "2 ints", "(2, 2, 2)"]),
    (lambda: ap.empool2d(X, kernel_size=2.5), TypeError, ["kernel_size:", "2.5"]),
    (lambda: ap.empool2d(X, ceil_mode="yes"), TypeError, ["ceil_mode:", "bool"]),
    (lambda: ap.adapool2d(X, np.zeros((3, 4))), ValueError, ["beta:", "(2, 3, 4, 4)", "(3, 4)"]),
    (lambda: ap.adapool2d(X, np.zeros((5, 2, 3, 4, 4))), ValueError, ["beta:", "(5, 2, 3, 4, 4)"]),
    (lambda: ap.adapool2d(X, np.zeros((4, 4), complex)), TypeError, ["beta:", "complex128"]),
    (lambda: ap.adapool2d(X, "half"), TypeError, ["beta:"]),
    (lambda: ap.adapool2d_backward(np.zeros((2, 3, 4, 5), np.float32), X, 0.5), ValueError,
     ["grad_out:", "(2, 3, 4, 4)", "(2, 3, 4, 5)"]),
    (lambda: ap.empool2d_backward(np.zeros((2, 3, 4, 4)), X, mode="approx"), ValueError, ["mode:", "approx"]),
    (lambda: ap.adaunpool2d(np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 4, 3, 3))), ValueError,
     ["w:", "(2, 3, 4, 4, 2, 2)", "(2, 3, 4, 4, 3, 3)"]),
    (lambda: ap.adaunpool2d(np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 4, 2, 2)), output_size=(12, 12)), ValueError,
     ["output_size:", "(12, 12)"]),
    (lambda: ap.adaunpool2d(np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 4, 2, 2)), normalize="mean"), ValueError,
     ["normalize:", "mean"]),
])
def test_error_names_argument_expected_and_given(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)


def test_output_too_small_is_an_error():
    """spec: an output size o < 1 is an error naming the argument.  o < 1 exactly
    when the kernel is larger than the padded input, so kernel_size is named,
    with the bound and the given value."""
    with pytest.raises(ValueError, match=r"kernel_size: expected at most the padded input size \(3,\).*got \(4,\)"):
        ap.empool1d(np.zeros((1, 1, 1)), kernel_size=4, padding=1)
    with pytest.raises(ValueError, match=r"kernel_size: .*\(2, 6\).*got \(2, 7\)"):
        ap.adapool2d(np.zeros((1, 1, 2, 6)), 0.5, kernel_size=(2, 7))
    # The boundary: the smallest legal input gives one window.
    y = ap.empool1d(np.zeros((1, 1, 1)), kernel_size=3, padding=1)
    assert y.shape == (1, 1, 1)
    y = ap.empool1d(np.zeros((1, 1, 1)), kernel_size=3, stride=5, padding=1, ceil_mode=True)
    assert y.shape == (1, 1, 1)


def test_beta_on_another_device_is_an_error():
    class FakeDevice:  # a beta that says it lives on a GPU
        def __dlpack_device__(self):
            return (2, 0)

        def __dlpack__(self, **kw):
            raise AssertionError("must not be read")

    with pytest.raises(ValueError) as info:
        ap.adapool2d(X, FakeDevice())
    message = str(info.value)
    assert "beta:" in message and "cuda:0" in message and "cpu" in message, message
