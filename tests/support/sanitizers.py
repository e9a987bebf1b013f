"""The CUDA kernels under ThreadSanitizer, AddressSanitizer and UBSan (docs/cuda.md).

The kernels are built with the emulation header into a standalone executable,
``tests/sanitizers/driver.cpp`` linked in one translation unit with them, so the
sanitizer runtime owns the process from its first instruction (no Python
interpreter, no LD_PRELOAD).  Python decides what the kernels do: the public
functions run on ``_cuda.Backend`` with a launcher that records every launch
(kernel, grid, arguments, the bytes of every array at first sight) into a
plan; the driver replays the plan on buffers of exactly the arrays' sizes.

Builds are cached by a hash of everything that goes into them, in a
directory shared with subprocesses (``ADAPOOL_SANITIZER_CACHE``, else the
system temporary directory), so each build is compiled once per source.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from adapool_core import _cuda

from .emulation import EMULATION_H, PoisonedNumPy, symbol

TESTS = Path(__file__).resolve().parent.parent
EMULATION_HEADER = Path(EMULATION_H)  # the one emulation header (tests/support/emulation.h)
KERNEL_SOURCE = _cuda.source_dir() / _cuda.SOURCE_NAME
DRIVER = TESTS / "sanitizers" / "driver.cpp"
FIXTURES = TESTS / "sanitizers" / "fixtures.cu"
FIXTURE_KERNELS = tuple(f"sanitizer_fixtures::{k}" for k in
                        ("racy_sum", "racy_same_residue", "read_past_end", "overflowing_index", "clean_copy"))

GXX = shutil.which("g++")
OS_THREADS = 4  # per launch in the thread build (ADAPOOL_EMULATE_THREADS)
COMMON = ("-std=c++17", "-O1", "-g", "-fno-omit-frame-pointer", "-ffp-contract=off")
BUILDS = {
    "thread": ("-fsanitize=thread", "-pthread", f"-DADAPOOL_EMULATE_THREADS={OS_THREADS}"),
    # -fno-sanitize-recover: the first UBSan report ends the run with an error status.
    "address,undefined": ("-fsanitize=address,undefined", "-fno-sanitize-recover=all"),
}
# Any report ends the run with a non-zero status; halt at the first.
RUNTIME_ENV = {
    "TSAN_OPTIONS": "halt_on_error=1 exitcode=66",
    "ASAN_OPTIONS": "halt_on_error=1 detect_leaks=1 exitcode=67",
    "UBSAN_OPTIONS": "halt_on_error=1 print_stacktrace=1",
}
REPORT_MARKERS = ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def cache_dir() -> Path:
    path = Path(os.environ.get("ADAPOOL_SANITIZER_CACHE") or
                Path(tempfile.gettempdir()) / f"adapool-sanitizers-{os.getuid()}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def harness_source(source: Path, expressions) -> str:
    lines = [f'#include "{source}"']
    lines += [f"ADAPOOL_EMULATED_KERNEL({symbol(e)}, {e})" for e in expressions]
    lines.append(f'#include "{DRIVER}"')
    lines.append("const EmulatedKernel emulated_kernels[] = {")
    lines += [f'    {{"{symbol(e)}", &{symbol(e)}}},' for e in expressions]
    lines.append("    {nullptr, nullptr}};")
    return "\n".join(lines) + "\n"


def build(sanitizer: str, source: Path = KERNEL_SOURCE, expressions=None) -> Path:
    """The driver executable for ``sanitizer`` (a key of BUILDS) over the kernels
    of ``source``; compiled once per content hash, then reused."""
    expressions = tuple(expressions or _cuda.name_expressions())
    harness = harness_source(source, expressions)
    flags = COMMON + BUILDS[sanitizer]
    digest = hashlib.sha256()
    for part in (harness, " ".join(flags), EMULATION_HEADER.read_text(), source.read_text(), DRIVER.read_text(),
                 subprocess.run([GXX, "--version"], capture_output=True, text=True).stdout):
        digest.update(part.encode() + b"\0")
    key = digest.hexdigest()[:20]
    executable = cache_dir() / f"driver-{sanitizer.replace(',', '-')}-{key}"
    if executable.exists():
        return executable
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        # The kernels include CUDA's half headers; the emulation header defines the types instead.
        for header in ("cuda_fp16.h", "cuda_bf16.h"):
            Path(tmp, header).write_text("// emulation: types in emulation.h\n")
        Path(tmp, "harness.cpp").write_text(harness)
        output = Path(tmp, "driver")
        cmd = [GXX, *flags, "-include", str(EMULATION_HEADER), "-I", tmp, str(Path(tmp, "harness.cpp")),
               "-o", str(output)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"g++ failed ({' '.join(cmd)}):\n{done.stderr}")
        os.replace(output, executable)  # atomic: concurrent sessions see a whole file or none
    return executable


class PlanRecorder:
    """A ``_cuda.Backend`` launcher that records launches instead of running them.

    An array is recorded the first time a launch takes it (its bytes then: the
    inputs' values, NaN for what ``PoisonedNumPy.empty`` allocates, zeros for
    a zeroed gradient); later launches name the same buffer, so results flow
    from launch to launch in the replay as they do on the GPU.
    """

    def __init__(self):
        self.buffers = {}  # (data pointer, nbytes) -> (id, array kept alive so the address stays unique)
        self.blob = bytearray()
        self.lines = []
        self.launches = 0

    def __call__(self, name, blocks, threads, args):
        tokens = []
        for a in args:
            if isinstance(a, np.ndarray):
                assert a.flags.c_contiguous, name
                key = (a.ctypes.data, a.nbytes)
                if key not in self.buffers:
                    self.buffers[key] = (len(self.buffers), a)
                    self.lines.append(f"B {len(self.buffers) - 1} {a.nbytes} {len(self.blob)}")
                    self.blob += a.tobytes()
                tokens.append(f"b{self.buffers[key][0]}")
            else:
                tokens.append(f"s{int(a)}")
        self.lines.append(f"L {symbol(name)} {blocks} {threads} {len(tokens)} {' '.join(tokens)}")
        self.launches += 1

    def max_threads(self) -> int:
        return max((int(line.split()[2]) * int(line.split()[3]) for line in self.lines if line[0] == "L"), default=1)


def backend(recorder: PlanRecorder, max_blocks: int = _cuda.MAX_BLOCKS) -> _cuda.Backend:
    return _cuda.Backend(PoisonedNumPy(), recorder, max_blocks=max_blocks)


def replays_for(sanitizer: str, recorder: PlanRecorder) -> int:
    """Replays so that any two CUDA threads of a launch share no OS thread in at
    least one (their flat indices differ in some base-OS_THREADS digit)."""
    if sanitizer != "thread":
        return 1
    replays, span = 1, OS_THREADS
    while span < recorder.max_threads():
        replays, span = replays + 1, span * OS_THREADS
    return replays


def run(executable: Path, recorder: PlanRecorder, workdir, replays: int = 1) -> subprocess.CompletedProcess:
    """Replay the recorded plan under the sanitizer build; the completed process."""
    plan, blob = Path(workdir, "plan.txt"), Path(workdir, "plan.bin")
    plan.write_text("\n".join(recorder.lines) + "\n")
    blob.write_bytes(bytes(recorder.blob))
    env = dict(os.environ, **RUNTIME_ENV)
    return subprocess.run([str(executable), str(plan), str(blob), str(replays)], capture_output=True, text=True,
                          env=env, timeout=600)


def reports(done: subprocess.CompletedProcess) -> str:
    """The sanitizer reports of a run ('' when clean), or why the run failed."""
    if done.returncode == 0 and not any(m in done.stderr for m in REPORT_MARKERS):
        return ""
    text = done.stderr if len(done.stderr) <= 8000 else done.stderr[:6000] + "\n[...]\n" + done.stderr[-2000:]
    return f"exit status {done.returncode}\n{text}"
