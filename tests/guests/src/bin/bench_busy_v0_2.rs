//! The refused try-lock benchmark loop of `bench_ops` (`busy`), in a component built against
//! `stagelock:staging@0.2.0` with raw bindings, whose errors carry a message: arguments
//! `N PATH`; N refused try-locks of the held PATH; prints `ok bench NANOSECONDS`, timed inside.
use std::time::Instant;

mod bindings {
    wit_bindgen::generate!({
        inline: "
            package test:bench;
            world bench {
                import stagelock:staging/locks@0.2.0;
                import wasi:filesystem/preopens@0.2.12;
            }
        ",
        path: ["../../wit", "../../host/stagelock-wasmtime/wit-compat/0.2.0"],
        world: "test:bench/bench",
        generate_all,
    });
}

use bindings::stagelock::staging0_2_0::locks;
use bindings::wasi::filesystem::preopens;

fn main() {
    let (root, _) = preopens::get_directories()
        .into_iter()
        .next()
        .expect("a grant");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u32 = args[0].parse().expect("N");
    let start = Instant::now();
    for _ in 0..n {
        let refused = locks::try_lock_path(&root, &args[1]).expect_err("held");
        assert_eq!(refused.code, locks::ErrorCode::WouldBlock);
    }
    println!("ok bench {}", start.elapsed().as_nanos());
}
