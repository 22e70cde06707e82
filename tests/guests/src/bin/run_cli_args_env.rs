//! Arguments `PATH NAME`: takes PATH in its grant, prints the variable NAME and its own
//! program name (`argv[0]`), and releases PATH.
use stagelock_test_guests::*;

fn main() {
    let (path, name): (String, String) = (arg(0), arg(1));
    let dir = work();
    let lock = try_lock(&dir, &path).expect("the path is free");
    let value = std::env::var(&name).unwrap_or_default();
    println!("ok env {name}={value}");
    let argv0 = std::env::args().next().unwrap_or_default();
    println!("ok argv0 {argv0}");
    unlock(lock);
}
