//! Component start: loading from the on-disk cache, and instantiating a fresh store.

use super::*;

pub fn run(b: &Bench, t: &mut Table) {
    let (base, quick) = (&b.base, b.quick);
    let bytes = std::fs::read(BENCH_OPS).unwrap();
    let cold_engine = Engine::default();
    let cache_dir = scratch(base, "cache");
    let mut cfg = Config::new();
    let mut cache = CacheConfig::new();
    cache.with_directory(&cache_dir);
    cfg.cache(Some(Cache::new(cache).unwrap()));
    let cached_engine = Engine::new(&cfg).unwrap();
    Component::new(&cached_engine, &bytes).unwrap(); // fills the cache
    let compile_rounds = if quick { 3 } else { 7 };
    let [cold, cached] = interleaved(
        compile_rounds,
        &mut [
            &mut || time_per_op(1, || drop(Component::new(&cold_engine, &bytes).unwrap())),
            &mut || time_per_op(1, || drop(Component::new(&cached_engine, &bytes).unwrap())),
        ],
    );
    let r = cold / cached;
    t.row(
        "load a component: from the on-disk cache (vs cold compile)",
        format!("{:.2} ms", cached / 1e6),
        format!("{:.2} ms", cold / 1e6),
        format!("{r:.0}x faster"),
        "",
        None,
    );

    let mut pooling = Config::new();
    pooling.allocation_strategy(InstanceAllocationStrategy::pooling());
    let pool_engine = Engine::new(&pooling).unwrap();
    let inst_n = if quick { 50 } else { 1000 };
    let fresh_store =
        |engine: &Engine| Store::new(engine, PluginState::new(WasiCtxBuilder::new().build()));
    let instantiate_with = |engine: &Engine| {
        let component = Component::new(engine, &bytes).unwrap();
        let linker = plugin_linker(engine).unwrap();
        let pre = linker.instantiate_pre(&component).unwrap();
        let pre_ns = time_per_op(inst_n, || {
            let mut store = fresh_store(engine);
            pre.instantiate(&mut store).unwrap();
        });
        let plain_ns = time_per_op(inst_n, || {
            let mut store = fresh_store(engine);
            linker.instantiate(&mut store, &component).unwrap();
        });
        (pre_ns, plain_ns)
    };
    let (pre_ns, plain_ns) = instantiate_with(&cold_engine);
    let (pool_pre_ns, _) = instantiate_with(&pool_engine);
    let best = pre_ns.min(pool_pre_ns);
    t.row(
        "instantiate a fresh store, `InstancePre`, on-demand (vs `Linker::instantiate`)",
        us(pre_ns, 2),
        us(plain_ns, 2),
        format!("{:.2}x", pre_ns / plain_ns),
        "<= 50 µs",
        Some(pre_ns <= 50_000.0),
    );
    t.row(
        "instantiate a fresh store, `InstancePre`, pooling allocator",
        us(pool_pre_ns, 2),
        us(plain_ns, 2),
        format!("{:.2}x", pool_pre_ns / plain_ns),
        "<= 50 µs",
        Some(best <= 50_000.0),
    );
}
