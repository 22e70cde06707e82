//! Hostile paths and patterns. Arguments: pairs `try PATH` or `create PATTERN`; a lock that is
//! taken is released at once (`ok unlock`). Then a path and a pattern with a NUL byte in them.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let args = args();
    for case in args.chunks(2) {
        let taken = match case {
            [op, path] if op == "try" => try_lock(&dir, path),
            [op, pattern] if op == "create" => create(&dir, pattern),
            other => panic!("not a case: {other:?}"),
        };
        if let Some(lock) = taken {
            unlock(lock);
        }
    }
    let _nul = (try_lock(&dir, "a\0b"), create(&dir, "a\0*"));
}
