"""A guest in Python, built from wit/ as it is by componentize-py (tests/components/python_guest.rs).

Run with /work granted while another process holds b.lock: locks a.lock, waits 200 ms for
b.lock (in vain), waits for the free c.lock, waits for d.lock and a clock at once, and
releases what it took. Prints one line per step: `ok STEP DETAIL` or `err STEP CODE: MESSAGE`.
"""

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import locks, monotonic_clock, poll, preopens


def report(step, outcome):
    """Prints the outcome of a lock-request's get() and hands back the lock, if any."""
    if isinstance(outcome, Ok):
        print(f"ok {step} {outcome.value.path()}")
        return outcome.value
    if isinstance(outcome, Err):
        code = outcome.value.code.name.lower().replace("_", "-")
        print(f"err {step} {code}: {outcome.value.message}")
        return None
    raise AssertionError(f"{step}: unexpected outcome {outcome!r}")


class Run(exports.Run):
    def run(self) -> None:
        (work,) = [d for d, path in preopens.get_directories() if path == "/work"]
        held = locks.try_lock_path(work, "a.lock")
        print(f"ok try {held.path()}")

        for name, timeout in (("b.lock", 200_000_000), ("c.lock", None)):
            with locks.request_lock(work, name, timeout) as request:
                with request.subscribe() as ready:
                    ready.block()
                lock = report(f"wait {name}", request.get())
            if lock is not None:
                locks.StagingLock.unlock_and_delete(lock)

        with locks.request_lock(work, "d.lock", None) as request:
            with request.subscribe() as ready, monotonic_clock.subscribe_duration(
                60_000_000_000
            ) as give_up:
                print(f"ok poll {poll.poll([ready, give_up])}")
            lock = report("wait d.lock", request.get())
        locks.StagingLock.unlock_and_delete(lock)

        locks.StagingLock.unlock_and_delete(held)
        print("ok unlock-and-delete a.lock")
