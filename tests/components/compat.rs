//! Components built against older WIT versions (the frozen 0.1.0 and 0.2.0) run unchanged on
//! this host, which serves 1.0.1; and one built against 1.0.0 runs on a host that serves only a
//! later 1.x minor, through wasmtime's semver matching.

use std::path::Path;

use anyhow::{Context, Result};
use stagelock::StagingLock;
use stagelock_tests::guests::*;
use stagelock_tests::{GuestRun, Scratch, assert_test_exists, component, engine, foreach_compat};
use stagelock_wasmtime::plugin::PluginState;
use stagelock_wasmtime::{HasStagingLock, StagingLockView};
use wasmtime::component::Linker;

foreach_compat!(assert_test_exists);

/// The `stagelock:` interfaces `guest` imports.
fn stagelock_imports(guest: &'static str) -> Vec<String> {
    let component = component(guest);
    let engine = component.engine().clone();
    component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_owned())
        .filter(|name| name.starts_with("stagelock:"))
        .collect()
}

/// Runs `guest` in a sync and in an async store, each time in a fresh directory where the host
/// holds `held.lock`; `check` gets the store's kind and the guest's lines. The guest must have
/// committed `out/built.txt` holding `built`, and left nothing else.
fn on_both_stores(guest: &'static str, built: &str, check: impl Fn(&str, &[&str])) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    for store in ["sync", "async"] {
        let s = Scratch::new()?;
        let held = StagingLock::try_lock_path(s.dir(), "held.lock")?;
        let run = GuestRun::new(&[]).work(s.path());
        let done = match store {
            "sync" => run.run(guest),
            _ => runtime.block_on(run.run_async(guest)),
        }
        .succeeded();
        check(store, &done.lines());
        assert_eq!(
            std::fs::read_to_string(s.join("out/built.txt"))?,
            built,
            "{store}"
        );
        held.unlock_and_delete()?;
        assert_eq!(s.names()?, ["out"], "{store}");
    }
    Ok(())
}

/// A component built against `stagelock:staging@0.1.0` (the frozen WIT in the host crate's
/// `wit-compat/0.1.0`) imports the 0.1.0 interfaces, and runs on both linkers: its locks
/// exclude the host's, its stage commits, its recovery runs.
#[test]
fn compat_v0_1() -> Result<()> {
    assert_eq!(
        stagelock_imports(COMPAT_V0_1),
        [
            "stagelock:staging/locks@0.1.0",
            "stagelock:staging/staging@0.1.0"
        ]
    );
    on_both_stores(COMPAT_V0_1, "from 0.1.0", |store, lines| {
        assert!(
            lines[0].starts_with("err try ErrorCode::WouldBlock: try-lock-path \"held.lock\""),
            "{store}: {lines:?}"
        );
        assert_eq!(
            lines[1..],
            [
                "ok create true",
                "ok unlock",
                "ok commit out",
                "ok recover 0 0"
            ],
            "{store}"
        );
    })
}

/// A component built against `stagelock:staging@0.2.0` (the frozen WIT in `wit-compat/0.2.0`)
/// imports the 0.2.0 interfaces and runs on both linkers with 0.2.0's records: errors with a
/// code and the whole message, `lock-request.get` without 1.0.0's nested result (an outcome
/// taken twice is `invalid-input`), a refused commit that hands the stage back.
#[test]
fn compat_v0_2() -> Result<()> {
    assert_eq!(
        stagelock_imports(COMPAT_V0_2),
        [
            "stagelock:staging/locks@0.2.0",
            "stagelock:staging/staging@0.2.0"
        ]
    );
    on_both_stores(COMPAT_V0_2, "from 0.2.0", |store, lines| {
        assert_eq!(
            lines[..3],
            [
                "err try ErrorCode::WouldBlock: try-lock-path \"held.lock\": held by another lock \
                 holder",
                "err wait ErrorCode::WouldBlock: lock-path \"held.lock\": still held by another \
                 lock holder after waiting 20ms",
                "err wait ErrorCode::InvalidInput: lock-request.get: the outcome was already taken",
            ],
            "{store}: {lines:?}"
        );
        assert_eq!(
            lines[3..6],
            ["ok create true", "ok unlock", "ok commit out"],
            "{store}"
        );
        assert!(
            lines[6].starts_with("err commit ErrorCode::AlreadyExists: commit \"out\": ")
                && lines[6].ends_with("(stage back: true)"),
            "{store}: {lines:?}"
        );
        assert_eq!(lines[7..], ["ok recover 0 0"], "{store}");
    })
}

/// A host that serves `stagelock:staging/locks@1.1.0` and nothing of 1.0.x: the test-only copy
/// in `tests/wit-1.1.0` (wit/'s `locks` plus `host-name`, `@since(version = 1.1.0)`), with
/// every 1.0 function answered by stagelock-wasmtime's own.
mod v1_1 {
    wasmtime::component::bindgen!({
        path: ["../wit", "wit-1.1.0"],
        world: "stagelock:staging/locks-only@1.1.0",
        with: {
            "wasi": wasmtime_wasi::p2::bindings,
            "stagelock:staging/locks.staging-lock": ::stagelock::StagingLock,
            "stagelock:staging/locks.lock-request": stagelock_wasmtime::LockRequest,
        },
        imports: { default: trappable },
        trappable_error_type: {
            "stagelock:staging/locks@1.1.0.error-code" => stagelock_wasmtime::HostError,
        },
        require_store_data_send: true,
    });

    use ::stagelock::StagingLock;
    use stagelock_wasmtime::bindings::locks as served;
    use stagelock_wasmtime::{HostError, LockRequest, StagingLockCtxView};
    use wasmtime::component::Resource;
    use wasmtime_wasi::filesystem::Descriptor;
    use wasmtime_wasi::p2::DynPollable;

    pub use self::stagelock::staging1_1_0::locks;

    impl locks::Host for StagingLockCtxView<'_> {
        fn create_and_lock(
            &mut self,
            dir: Resource<Descriptor>,
            pattern: String,
        ) -> Result<(Resource<StagingLock>, String), HostError> {
            served::Host::create_and_lock(self, dir, pattern)
        }

        fn try_lock_path(
            &mut self,
            dir: Resource<Descriptor>,
            path: String,
        ) -> Result<Resource<StagingLock>, HostError> {
            served::Host::try_lock_path(self, dir, path)
        }

        fn request_lock(
            &mut self,
            dir: Resource<Descriptor>,
            path: String,
            timeout: Option<u64>,
        ) -> Result<Resource<LockRequest>, HostError> {
            served::Host::request_lock(self, dir, path, timeout)
        }

        fn host_name(&mut self) -> wasmtime::Result<String> {
            Ok("a 1.1.0 test host".into())
        }

        fn convert_error_code(&mut self, err: HostError) -> wasmtime::Result<locks::ErrorCode> {
            served::Host::convert_error_code(self, err).map(code)
        }
    }

    /// The served 1.0.1 case as this 1.1.0's (the same cases: a 1.x minor adds none).
    fn code(code: served::ErrorCode) -> locks::ErrorCode {
        use locks::ErrorCode as C;
        use served::ErrorCode as S;
        match code {
            S::WouldBlock => C::WouldBlock,
            S::NoEntry => C::NoEntry,
            S::Invalid => C::Invalid,
            S::Access => C::Access,
            S::NotPermitted => C::NotPermitted,
            S::ReadOnly => C::ReadOnly,
            S::NotAFile => C::NotAFile,
            S::NotDirectory => C::NotDirectory,
            S::LimitReached => C::LimitReached,
            S::Exist => C::Exist,
            S::CrossDevice => C::CrossDevice,
            S::LockLost => C::LockLost,
            S::Other(text) => C::Other(text),
        }
    }

    impl locks::HostStagingLock for StagingLockCtxView<'_> {
        fn path(&mut self, lock: Resource<StagingLock>) -> wasmtime::Result<String> {
            served::HostStagingLock::path(self, lock)
        }

        fn unlock_and_delete(&mut self, lock: Resource<StagingLock>) -> Result<(), HostError> {
            served::HostStagingLock::unlock_and_delete(self, lock)
        }

        fn drop(&mut self, lock: Resource<StagingLock>) -> wasmtime::Result<()> {
            served::HostStagingLock::drop(self, lock)
        }
    }

    impl locks::HostLockRequest for StagingLockCtxView<'_> {
        fn subscribe(
            &mut self,
            request: Resource<LockRequest>,
        ) -> wasmtime::Result<Resource<DynPollable>> {
            served::HostLockRequest::subscribe(self, request)
        }

        #[allow(clippy::type_complexity)] // the WIT type, as bindgen spells it
        fn get(
            &mut self,
            request: Resource<LockRequest>,
        ) -> wasmtime::Result<Option<Result<Result<Resource<StagingLock>, locks::ErrorCode>, ()>>>
        {
            let outcome = served::HostLockRequest::get(self, request)?;
            Ok(outcome.map(|taken| taken.map(|result| result.map_err(code))))
        }

        fn drop(&mut self, request: Resource<LockRequest>) -> wasmtime::Result<()> {
            served::HostLockRequest::drop(self, request)
        }
    }
}

/// A component built against the released 1.0.0, importing `locks@1.0.0`, runs on a host whose
/// linker defines only `locks@1.1.0` (a function more, behind its `@since` gate): wasmtime's
/// semver matching gives it the 1.1.0 instance, and its locks behave as on the full host.
/// The test copy is wit/'s `locks` with that function added, nothing else.
#[test]
fn compat_v1_0() -> Result<()> {
    let wit =
        |path: &str| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path));
    let (served, test_copy) = (wit("../wit/locks.wit")?, wit("wit-1.1.0/locks.wit")?);
    let served: Vec<&str> = served
        .lines()
        .filter(|l| !l.starts_with("package "))
        .collect();
    let mut added: Vec<&str> = test_copy
        .lines()
        .filter(|l| !l.starts_with("package ") && !l.starts_with("// "))
        .collect();
    for line in &served {
        let at = added.iter().position(|l| l == line);
        added.remove(at.with_context(|| format!("wit-1.1.0/locks.wit lacks: {line}"))?);
    }
    assert_eq!(
        added,
        [
            "",
            "    /// The host's name for itself: a function 1.0.0 does not have.",
            "    @since(version = 1.1.0)",
            "    host-name: func() -> string;",
        ],
        "the test copy is wit/'s locks plus one function"
    );

    assert_eq!(
        stagelock_imports(COMPAT_V1_0),
        ["stagelock:staging/locks@1.0.0"]
    );
    let mut linker = Linker::<PluginState>::new(engine());
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(anyhow::Error::from)?;
    v1_1::locks::add_to_linker::<PluginState, HasStagingLock>(
        &mut linker,
        PluginState::staging_lock,
    )
    .map_err(anyhow::Error::from)?;
    // What the linker defines: 1.1.0's functions (defining one again fails), and no 1.0.x
    // (defining a function there succeeds, in a copy of the linker).
    let defines = |version: &str, func: &str| {
        let mut copy = linker.clone();
        let mut instance = copy.instance(&format!("stagelock:staging/locks@{version}"))?;
        instance.func_wrap(func, |_, (): ()| Ok(()))
    };
    assert!(defines("1.1.0", "host-name").is_err(), "1.1.0 is served");
    assert!(
        defines("1.1.0", "try-lock-path").is_err(),
        "1.1.0 is served"
    );
    for version in ["1.0.0", "1.0.1"] {
        assert!(
            defines(version, "try-lock-path").is_ok(),
            "{version} is served"
        );
    }

    let s = Scratch::new()?;
    let held = StagingLock::try_lock_path(s.dir(), "held.lock")?;
    let done = GuestRun::new(&[])
        .work(s.path())
        .run_with(&linker, COMPAT_V1_0)
        .succeeded();
    assert_eq!(
        done.lines(),
        [
            "err try ErrorCode::WouldBlock",
            "err wait ErrorCode::WouldBlock",
            "ok create true",
            "ok unlock"
        ]
    );
    held.unlock_and_delete()?;
    assert!(s.names()?.is_empty());
    Ok(())
}
