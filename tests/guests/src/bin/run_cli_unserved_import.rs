//! A component importing an interface `stagelock run` does not serve, as a default
//! componentize-js build imports `wasi:http`: a stand-in `wasi:http/types@0.3.0` with one
//! function (0.3.0, so it is not merged with the 0.2.x the std library's WASI world knows),
//! so that the import is there without WASI's whole HTTP package.

mod bindings {
    wit_bindgen::generate!({
        inline: "
            package wasi:http@0.3.0;
            interface types {
                ping: func() -> u32;
            }
            world unserved {
                import types;
            }
        ",
        world: "wasi:http/unserved@0.3.0",
    });
}

fn main() {
    println!("ok ping {}", bindings::wasi::http::types::ping());
}
