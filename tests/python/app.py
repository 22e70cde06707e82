"""A guest in Python, built from wit/ as it is by componentize-py (tests/components/python_guest.rs).

Run with /work granted while another process holds b.lock: locks a.lock, waits 200 ms for
b.lock (in vain), waits for the free c.lock, waits for d.lock and a clock at once, and
releases what it took; then stages in /work, removes the stage's resource itself and commits:
refused with no-entry, the stage handed back, which it aborts. Prints one line per step:
`ok STEP DETAIL` or `err STEP CODE`.

Errors are WIT 1.0.0's `error-code` variant: a bare case for every common failure, so a
refusal carries no string; only `other` brings the host's text.
"""

import re


from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import locks, monotonic_clock, poll, preopens, staging


def case(code):
    """The WIT name of an error-code case (`ErrorCode_WouldBlock` is `would-block`), with the
    host's text for `other`."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    name = re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()
    text = getattr(code, "value", None)
    return f"{name}: {text}" if text else name


def report(step, outcome):
    """Prints the outcome of a lock-request's get() and hands back the lock, if any.

    The outcome is `option<result<result<staging-lock, error-code>>>`: None while waiting,
    Err(None) if already taken, else the lock or why not."""
    if isinstance(outcome, Ok) and isinstance(outcome.value, Ok):
        print(f"ok {step} {outcome.value.value.path()}")
        return outcome.value.value
    if isinstance(outcome, Ok) and isinstance(outcome.value, Err):
        print(f"err {step} {case(outcome.value.value)}")
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

        # A stage whose resource its owner removed before the commit: refused with no-entry
        # before anything moves, and handed back, still held, to abort.
        area = staging.StagingArea.open(work, staging.Layout.PER_DIRECTORY)
        stage = area.stage()
        work.remove_directory_at(stage.path())
        try:
            staging.Stage.commit(stage, work, "gone", False)
            print("unexpected: a commit of a removed resource")
        except Err as e:
            failed = e.value
            back = failed.stage is not None
            print(f"err commit vanished {case(failed.code)} (stage back: {back})")
            staging.Stage.abort(failed.stage)
            print("ok abort vanished")
