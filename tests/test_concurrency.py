"""8 Python threads calling every function at once, on different inputs,
all get the results a single thread gets (bit for bit).

The kernels are ``nogil=True``, so the calls really overlap.  Under Numba's
fallback threading layer (workqueue, where neither TBB nor OpenMP is
installed) concurrent entry into parallel code aborts the process; the CPU
backend serialises launches there (``_cpu._launch``), which the subprocess
test checks."""
import os
import subprocess
import sys
import threading

import workload  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREADS = 8
ROUNDS = 3


def run_threads():
    """Errors (empty: every thread got the serial results)."""
    cases = workload.case_list()
    # Thread t takes every 8th case: different methods, ranks, dtypes and shapes at once.
    mine = {t: [(i, cases[i]) for i in range(t, len(cases), THREADS)] for t in range(THREADS)}
    expected = {i: workload.digest(workload.run_case(*case, seed=i)) for i, case in enumerate(cases)}
    errors = []
    barrier = threading.Barrier(THREADS)

    def work(t):
        try:
            barrier.wait()
            for _ in range(ROUNDS):
                for i, case in mine[t]:
                    got = workload.digest(workload.run_case(*case, seed=i))
                    if got != expected[i]:
                        errors.append((t, case))
        except Exception as err:  # noqa: BLE001 - reported by the test
            errors.append((t, repr(err)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return errors


def test_eight_threads_get_the_serial_results():
    assert run_threads() == []


def test_eight_threads_under_the_workqueue_layer_do_not_abort():
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    done = subprocess.run([sys.executable, os.path.abspath(__file__)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["workqueue", "ok"], done.stdout


if __name__ == "__main__":  # the subprocess of the workqueue test
    import numba

    problems = run_threads()
    print(numba.threading_layer())
    print("ok" if not problems else problems)
