// The modules and the allocator of every `serve-*` binary (`examples/serve-*.rs` include this
// file; each adds its crate's `main`). Each binary uses one crate's part of the shared modules.

#[path = "../common/counting.rs"]
mod counting;
#[macro_use]
#[path = "../common/peers.rs"]
mod peers;
#[path = "../common/apps.rs"]
mod apps;
#[path = "../common/jar.rs"]
mod jar;
#[path = "../common/serve.rs"]
mod serve;
#[path = "../common/serve_app.rs"]
mod serve_app;
#[path = "../common/wide.rs"]
mod wide;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;
