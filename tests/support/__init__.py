"""What the tests share: the method list, the beta-shape builder, error
measures and the call helpers.  The CUDA emulation build is in
``support.emulation`` (with ``emulation.h`` beside it), the CUDA comparison
cases in ``support.cuda_cases``."""
import os

import numpy as np
import pytest

METHODS = ("adapool", "edscwpool", "empool", "idwpool")

# CI sets this so that a missing tool fails the CUDA proofs instead of skipping them.
CUDA_CHECKS_REQUIRED = os.environ.get("ADAPOOL_REQUIRE_CUDA_CHECKS") == "1"


def cuda_check_unavailable(reason: str):
    """Skip a CUDA proof whose tool is missing, or fail under ADAPOOL_REQUIRE_CUDA_CHECKS=1
    (CI: the NVRTC and g++ proofs must never skip)."""
    if CUDA_CHECKS_REQUIRED:
        pytest.fail(f"{reason} (ADAPOOL_REQUIRE_CUDA_CHECKS=1: the CUDA proofs must run)")
    pytest.skip(reason)


# beta's broadcast kinds (spec: beta broadcasts against the output's shape);
# "float" is a Python float, "scalar" a 0-d array.
BETA_KINDS = ("O", "ones", "scalar", "channel", "full", "float")


def beta_shape(kind: str, lead: tuple, o: tuple) -> tuple:
    """The shape of a beta of broadcast ``kind`` for an output of shape ``lead + o``
    (``lead``: ``(N, C)``, or ``(C,)`` unbatched)."""
    return {"O": o, "ones": (1,) * len(o), "scalar": (), "channel": (lead[-1],) + (1,) * len(o),
            "full": tuple(lead) + tuple(o)}[kind]


def make_beta(kind: str, rng, lead: tuple, o: tuple, dtype=np.float64, low=-0.25, high=1.25, value=0.3):
    """A beta of broadcast ``kind``: uniform in [low, high) (beyond [0, 1] by default,
    so that the clamp takes part on both sides), or the Python float ``value``."""
    if kind == "float":
        return value
    return rng.uniform(low, high, size=beta_shape(kind, lead, o)).astype(dtype)


def rel_err(out, ref):
    """Norm-wise relative error ||out - ref|| / ||ref|| (spec: Numerics)."""
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    den = np.linalg.norm(ref)
    num = np.linalg.norm(out - ref)
    return num / den if den > 0 else num


def call_pool(ap, method, d, x, beta, **kw):
    fn = getattr(ap, f"{method}{d}d")
    return fn(x, beta, **kw) if method == "adapool" else fn(x, **kw)


def call_backward(ap, method, d, g, x, beta, **kw):
    fn = getattr(ap, f"{method}{d}d_backward")
    return fn(g, x, beta, **kw) if method == "adapool" else (fn(g, x, **kw), None)


def pool_against_reference(ap, method, d, x, beta, kw, tol, rng):
    """A kernel path's forward (values and weights) against the float64 loop reference,
    asserted to ``tol``, and its gradients for a random cotangent with the reference's:
    returns (y, y_ref, g, gx, gb, gx_ref, gb_ref) for the caller's gradient checks."""
    import reference as ref
    import reference_grad as ref_grad

    y_ref, w_ref = ref.pool(method, x, beta, **kw)
    y, w = call_pool(ap, method, d, x, beta, return_mask=True, **kw)
    assert y.dtype == x.dtype
    assert rel_err(y, y_ref) <= tol
    assert rel_err(w, w_ref) <= tol
    np.testing.assert_array_equal(call_pool(ap, method, d, x, beta, **kw), y)  # the mask changes nothing
    g = rng.standard_normal(y.shape)
    gx_ref, gb_ref, _, _ = ref_grad.pool_gradient(method, x, beta, g, kw["kernel_size"], kw["stride"],
                                                  kw["padding"], kw["ceil_mode"])
    gx, gb = call_backward(ap, method, d, g.astype(x.dtype), x, beta, **kw)
    return y, y_ref, g, gx, gb, gx_ref, gb_ref


def path_and_general(ap, method, d, x, beta, g, mode, monkeypatch, **kw):
    """((y, w, gx, gb) of the kernels the backend chooses, the same from the general kernels
    alone): the path checks' comparison (``monkeypatch`` keeps the general kernels after)."""
    from adapool_core._cpu import launch

    def run():
        y, w = call_pool(ap, method, d, x, beta, return_mask=True, **kw)
        return (y, w) + call_backward(ap, method, d, g, x, beta, mode=mode, **kw)

    path = run()
    monkeypatch.setattr(launch, "chunk_kernels", lambda x3, geom, method: None)
    return path, run()
