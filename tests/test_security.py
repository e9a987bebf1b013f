"""SECURITY.md's "never" list, observed: every public function runs under a
Python audit hook (PEP 578) that records network, process, code-execution
and file-writing events.  None may occur."""
import os
import sys

import numpy as np
import pytest

import adapool_core
import workload

# Audit events that would break a promise of SECURITY.md.
NETWORK = ("socket.", "urllib.Request", "http.client.")
PROCESS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "pty.spawn")
CODE = ("exec", "compile", "builtins.input", "ctypes.dlopen", "import")
FILES = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.truncate", "shutil.", "os.chmod", "os.symlink")

_recording = []
_active = [False]


def _writes(args):
    """Whether an 'open' event opens for writing."""
    mode, flags = (args[1] if len(args) > 1 else None), (args[2] if len(args) > 2 else 0)
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & 0o3 or flags & 0o100)  # O_WRONLY | O_RDWR, O_CREAT


def _hook(event, args):
    if not _active[0]:
        return
    if event == "open":
        if _writes(args):
            _recording.append((event, args[:2]))
    elif event.startswith(NETWORK + PROCESS + FILES) or event in CODE:
        _recording.append((event, repr(args)[:200]))


sys.addaudithook(_hook)  # audit hooks cannot be removed; this one is idle outside the test


def test_public_functions_never_touch_network_processes_code_or_files():
    cases = workload.case_list()
    for i, case in enumerate(cases):  # compile (and cache) every kernel first
        workload.run_case(*case, seed=i)
    _active[0] = True
    try:
        outputs = [workload.run_case(*case, seed=i) for i, case in enumerate(cases)]
    finally:
        _active[0] = False
    assert sum(a.size for out in outputs for a in out) > 0
    assert _recording == []


def test_the_hook_sees_what_it_looks_for(tmp_path):
    # Guard against a vacuous pass: the same hook records a file write and a compile.
    _active[0] = True
    try:
        (tmp_path / "f.txt").write_text("x")
        compile("1 + 1", "<test>", "eval")
    finally:
        _active[0] = False
    events = [event for event, _ in _recording]
    _recording.clear()
    assert "open" in events and "compile" in events


def test_cli_writes_only_into_the_output_folder_it_is_given(tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="the demo writes PNG crops with Pillow")
    pytest.importorskip("skimage", reason="the demo measures PSNR/SSIM with scikit-image")
    from adapool_core import cli

    image = tmp_path / "in.png"
    Image.fromarray((np.random.default_rng(0).random((24, 24)) * 255).astype(np.uint8)).save(image)
    out = tmp_path / "out"
    package = os.path.realpath(os.path.dirname(adapool_core.__file__))
    _recording.clear()
    _active[0] = True
    try:
        code = cli.main(["demo", "--images", str(image), "--kernel", "2", "--methods", "em", "ada",
                         "--fit-steps", "1", "--no-clip", "--out", str(out)])
    finally:
        _active[0] = False
    written = [args[0] for event, args in _recording if event == "open"]
    _recording.clear()
    assert code == 0 and (out / "results.json").is_file()
    assert written, "the hook saw no write at all"

    def trusted_cache(path):  # Numba's and Python's caches in any __pycache__ of the package
        return path.startswith(package + os.sep) and "__pycache__" in path.split(os.sep)

    outside = [p for p in written if not isinstance(p, int) and not os.path.realpath(os.fspath(p)).startswith(str(out))
               and not trusted_cache(os.path.realpath(os.fspath(p)))]
    assert outside == []
