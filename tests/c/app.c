// A guest in C, built from wit/ as it is with wit-bindgen's C bindings, Debian's clang and
// wasi-libc, and the preview1 reactor adapter (scripts/c-guest.sh; tests/components/c_guest.rs
// runs it).
//
// Run with /work granted, while the host holds `held.lock` and another process holds `py.lock`
// with Python's `fcntl.lockf`, and a dead builder's stage `lock-7` + `temp-dir-7` lies in
// `staging/`. Prints one line per step: `ok STEP DETAIL` or `err STEP CODE`, the code by its
// WIT name.
//
// What a C guest must do by hand (see tests/c/README.md): flush stdout before `run` returns (a
// reactor never runs libc's exit handlers), drop every handle it was given (the list-free
// functions free strings and memory, never handles), and return false from `run` only to mean
// a non-zero exit.

#include <stdio.h>
#include <string.h>

#include "plugin.h"

typedef stagelock_staging_locks_error_code_t error_code_t;
typedef stagelock_staging_locks_own_staging_lock_t lock_t;
typedef wasi_filesystem_types_own_descriptor_t descriptor_t;
typedef wasi_filesystem_types_borrow_descriptor_t dir_t;

// The WIT name of every `error-code` case, by its discriminant.
static const char *const CODE_NAMES[] = {
    [STAGELOCK_STAGING_LOCKS_ERROR_CODE_WOULD_BLOCK] = "would-block",
    [STAGELOCK_STAGING_LOCKS_ERROR_CODE_NO_ENTRY] = "no-entry",
    [STAGELOCK_STAGING_LOCKS_ERROR_CODE_INVALID] = "invalid",
    [STAGELOCK_STAGING_LOCKS_ERROR_CODE_ACCESS] = "access",
    [STAGELOCK_STAGING_LOCKS_ERROR_CODE_NOT_PERMITTED] = "not-permitted",
    [STAGELOCK_STAGING_LOCKS_ERROR_CODE_READ_ONLY] = "read-only",
    [STAGELOCK_STAGING_LOCKS_ERROR_CODE_NOT_A_FILE] = "not-a-file",
    [STAGELOCK_STAGING_LOCKS_ERROR_CODE_NOT_DIRECTORY] = "not-directory",
    [STAGELOCK_STAGING_LOCKS_ERROR_CODE_LIMIT_REACHED] = "limit-reached",
    [STAGELOCK_STAGING_LOCKS_ERROR_CODE_EXIST] = "exist",
    [STAGELOCK_STAGING_LOCKS_ERROR_CODE_CROSS_DEVICE] = "cross-device",
    [STAGELOCK_STAGING_LOCKS_ERROR_CODE_LOCK_LOST] = "lock-lost",
    [STAGELOCK_STAGING_LOCKS_ERROR_CODE_OTHER] = "other",
};

// Prints `err STEP CODE` (`other: TEXT` for the one case with the host's text), then `more`,
// and frees the code's string, if any.
static void print_error_and(const char *step, error_code_t *code, const char *more) {
  const char *name = code->tag < sizeof CODE_NAMES / sizeof *CODE_NAMES && CODE_NAMES[code->tag]
                         ? CODE_NAMES[code->tag]
                         : "unknown";
  if (code->tag == STAGELOCK_STAGING_LOCKS_ERROR_CODE_OTHER && code->val.other.is_some) {
    plugin_string_t *text = &code->val.other.val;
    printf("err %s %s: %.*s%s\n", step, name, (int)text->len, (const char *)text->ptr, more);
  } else {
    printf("err %s %s%s\n", step, name, more);
  }
  stagelock_staging_locks_error_code_free(code);
}

// Prints `err STEP CODE` and frees the code's string, if any.
static void print_error(const char *step, error_code_t *code) { print_error_and(step, code, ""); }

// Prints `ok STEP PATH` with the lock's path.
static void print_lock(const char *step, lock_t lock) {
  plugin_string_t path;
  stagelock_staging_locks_borrow_staging_lock_t borrowed =
      stagelock_staging_locks_borrow_staging_lock(lock);
  stagelock_staging_locks_method_staging_lock_path(borrowed, &path);
  printf("ok %s %.*s\n", step, (int)path.len, (const char *)path.ptr);
  plugin_string_free(&path);
}

// try-lock-path, printed; returns whether it took the lock (into `*lock`).
static bool try_lock(const char *step, dir_t dir, const char *path, lock_t *lock) {
  plugin_string_t name;
  plugin_string_set(&name, path);
  error_code_t code;
  if (!stagelock_staging_locks_try_lock_path(dir, &name, lock, &code)) {
    print_error(step, &code);
    return false;
  }
  print_lock(step, *lock);
  return true;
}

// Unlocks and deletes `lock`, printed as `STEP` when `step` is not NULL (and always on error).
static void unlock(const char *step, lock_t lock) {
  error_code_t code;
  if (!stagelock_staging_locks_static_staging_lock_unlock_and_delete(lock, &code)) {
    print_error(step ? step : "unlock", &code);
  } else if (step) {
    printf("ok %s\n", step);
  }
}

// Blocks on `request`'s pollable, then prints what its `get` gives; the request is dropped.
static bool wait(const char *step, stagelock_staging_locks_own_lock_request_t request,
                 lock_t *lock) {
  stagelock_staging_locks_borrow_lock_request_t borrowed =
      stagelock_staging_locks_borrow_lock_request(request);
  wasi_io_poll_own_pollable_t ready =
      stagelock_staging_locks_method_lock_request_subscribe(borrowed);
  wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
  wasi_io_poll_pollable_drop_own(ready);
  stagelock_staging_locks_result_result_own_staging_lock_error_code_void_t outcome;
  bool got = stagelock_staging_locks_method_lock_request_get(borrowed, &outcome);
  stagelock_staging_locks_lock_request_drop_own(request);
  if (!got || outcome.is_err) {
    printf("err %s not ready after its pollable (or taken twice)\n", step);
    return false;
  }
  if (outcome.val.ok.is_err) {
    print_error(step, &outcome.val.ok.val.err);
    return false;
  }
  *lock = outcome.val.ok.val.ok;
  print_lock(step, *lock);
  return true;
}

// request-lock, printed only when it fails.
static bool request(const char *step, dir_t dir, const char *path, const uint64_t *timeout_ns,
                    stagelock_staging_locks_own_lock_request_t *out) {
  plugin_string_t name;
  plugin_string_set(&name, path);
  uint64_t timeout = timeout_ns ? *timeout_ns : 0;
  error_code_t code;
  if (!stagelock_staging_locks_request_lock(dir, &name, timeout_ns ? &timeout : NULL, out,
                                            &code)) {
    print_error(step, &code);
    return false;
  }
  return true;
}

// Writes `text` to the file `name` in `stage`'s resource directory, through wasi:filesystem.
static bool write_file(stagelock_staging_staging_own_stage_t stage, const char *name,
                       const char *text) {
  descriptor_t dir;
  error_code_t code;
  if (!stagelock_staging_staging_method_stage_dir(stagelock_staging_staging_borrow_stage(stage),
                                                  &dir, &code)) {
    print_error("stage-dir", &code);
    return false;
  }
  plugin_string_t path;
  plugin_string_set(&path, name);
  descriptor_t file;
  wasi_filesystem_types_error_code_t fs_code;
  bool ok = wasi_filesystem_types_method_descriptor_open_at(
      wasi_filesystem_types_borrow_descriptor(dir), 0, &path,
      WASI_FILESYSTEM_TYPES_OPEN_FLAGS_CREATE, WASI_FILESYSTEM_TYPES_DESCRIPTOR_FLAGS_WRITE, &file,
      &fs_code);
  if (ok) {
    plugin_list_u8_t bytes = {(uint8_t *)text, strlen(text)};
    wasi_filesystem_types_filesize_t written;
    ok = wasi_filesystem_types_method_descriptor_write(
        wasi_filesystem_types_borrow_descriptor(file), &bytes, 0, &written, &fs_code);
    wasi_filesystem_types_descriptor_drop_own(file);
  }
  if (!ok) {
    printf("err write %s wasi:filesystem error-code %d\n", name, fs_code);
  }
  wasi_filesystem_types_descriptor_drop_own(dir);
  return ok;
}

// Starts a stage in `area` and writes `text` into its `built.txt`; returns whether it did.
static bool build(stagelock_staging_staging_own_staging_area_t area, const char *text,
                  stagelock_staging_staging_own_stage_t *stage) {
  error_code_t code;
  if (!stagelock_staging_staging_method_staging_area_stage(
          stagelock_staging_staging_borrow_staging_area(area), stage, &code)) {
    print_error("stage", &code);
    return false;
  }
  if (!write_file(*stage, "built.txt", text)) {
    stagelock_staging_staging_stage_drop_own(*stage);
    return false;
  }
  return true;
}

// The steps, on the directory granted at /work.
static void steps(dir_t work) {
  // Locks, and refusals by a holder in the host and by a containers/storage-style one; then
  // refusals of what is not a lock file to take.
  lock_t mine, other;
  bool have_mine = try_lock("try a.lock", work, "a.lock", &mine);
  if (try_lock("try held.lock", work, "held.lock", &other)) unlock(NULL, other);
  if (try_lock("try py.lock", work, "py.lock", &other)) unlock(NULL, other);
  if (try_lock("try ../out.lock", work, "../out.lock", &other)) unlock(NULL, other);
  if (try_lock("try staging", work, "staging", &other)) unlock(NULL, other);

  // Waits: in vain with a timeout, for a free lock, and for one of two locks or a clock.
  stagelock_staging_locks_own_lock_request_t req, busy, d;
  uint64_t timeout = 200000000;  // 0.2 s
  if (request("wait held.lock", work, "held.lock", &timeout, &req) &&
      wait("wait held.lock", req, &other)) {
    unlock(NULL, other);
  }
  if (request("wait c.lock", work, "c.lock", NULL, &req) && wait("wait c.lock", req, &other)) {
    unlock(NULL, other);
  }
  if (request("poll", work, "py.lock", NULL, &busy)) {
    if (request("poll", work, "d.lock", NULL, &d)) {
      wasi_io_poll_own_pollable_t ready[3] = {
          stagelock_staging_locks_method_lock_request_subscribe(
              stagelock_staging_locks_borrow_lock_request(busy)),
          stagelock_staging_locks_method_lock_request_subscribe(
              stagelock_staging_locks_borrow_lock_request(d)),
          wasi_clocks_monotonic_clock_subscribe_duration(60000000000),  // 60 s
      };
      wasi_io_poll_borrow_pollable_t borrowed[3];
      for (int i = 0; i < 3; i++) borrowed[i] = wasi_io_poll_borrow_pollable(ready[i]);
      wasi_io_poll_list_borrow_pollable_t list = {borrowed, 3};
      plugin_list_u32_t which;
      wasi_io_poll_poll(&list, &which);
      printf("ok poll [");
      for (size_t i = 0; i < which.len; i++) printf(i ? ",%u" : "%u", (unsigned)which.ptr[i]);
      printf("]\n");
      plugin_list_u32_free(&which);
      for (int i = 0; i < 3; i++) wasi_io_poll_pollable_drop_own(ready[i]);
      if (wait("wait d.lock", d, &other)) unlock(NULL, other);
    }
    stagelock_staging_locks_lock_request_drop_own(busy);
  }

  // A staging area: recover, commit, commit replacing without syncing, a refused commit and
  // its abort.
  plugin_string_t staging;
  plugin_string_set(&staging, "staging");
  descriptor_t root;
  wasi_filesystem_types_error_code_t fs_code;
  if (!wasi_filesystem_types_method_descriptor_open_at(
          work, 0, &staging, WASI_FILESYSTEM_TYPES_OPEN_FLAGS_DIRECTORY,
          WASI_FILESYSTEM_TYPES_DESCRIPTOR_FLAGS_MUTATE_DIRECTORY, &root, &fs_code)) {
    printf("err open staging wasi:filesystem error-code %d\n", fs_code);
  } else {
    stagelock_staging_staging_own_staging_area_t area;
    error_code_t code;
    if (!stagelock_staging_staging_static_staging_area_open(
            wasi_filesystem_types_borrow_descriptor(root), STAGELOCK_STAGING_STAGING_LAYOUT_PAIRS,
            &area, &code)) {
      print_error("open area", &code);
    } else {
      stagelock_staging_staging_report_t report;
      if (!stagelock_staging_staging_method_staging_area_recover_stale(
              stagelock_staging_staging_borrow_staging_area(area), false, &report, &code)) {
        print_error("recover", &code);
      } else {
        printf("ok recover ");
        for (size_t i = 0; i < report.removed.len; i++) {
          plugin_string_t *id = &report.removed.ptr[i].id;
          printf(i ? ",%.*s" : "%.*s", (int)id->len, (const char *)id->ptr);
        }
        printf(" %zu\n", report.skipped.len);
        stagelock_staging_staging_report_free(&report);
      }

      plugin_string_t out;
      plugin_string_set(&out, "out");
      const struct {
        const char *text;
        stagelock_staging_staging_commit_options_t options;
      } commits[] = {
          {"first", {false, STAGELOCK_STAGING_STAGING_DURABILITY_FULL}},
          {"second", {true, STAGELOCK_STAGING_STAGING_DURABILITY_NONE}},
      };
      for (size_t i = 0; i < sizeof commits / sizeof *commits; i++) {
        stagelock_staging_staging_own_stage_t stage;
        if (!build(area, commits[i].text, &stage)) continue;
        stagelock_staging_staging_commit_options_t options = commits[i].options;
        stagelock_staging_staging_commit_error_t failed;
        char step[32];
        snprintf(step, sizeof step, "commit %s", commits[i].text);
        if (stagelock_staging_staging_static_stage_commit_with(stage, work, &out, &options,
                                                               &failed)) {
          printf("ok %s\n", step);
        } else {
          if (failed.stage.is_some) stagelock_staging_staging_stage_drop_own(failed.stage.val);
          print_error(step, &failed.code);
        }
      }

      stagelock_staging_staging_own_stage_t refused;
      if (build(area, "third", &refused)) {
        stagelock_staging_staging_commit_error_t failed;
        if (stagelock_staging_staging_static_stage_commit(refused, work, &out, false, &failed)) {
          printf("unexpected: a commit over out\n");
        } else {
          bool back = failed.stage.is_some;
          print_error_and("commit third", &failed.code,
                          back ? " (stage back: true)" : " (stage back: false)");
          if (back) {
            if (stagelock_staging_staging_static_stage_abort(failed.stage.val, &code)) {
              printf("ok abort\n");
            } else {
              print_error("abort", &code);
            }
          }
        }
      }
      stagelock_staging_staging_staging_area_drop_own(area);
    }
    wasi_filesystem_types_descriptor_drop_own(root);
  }

  if (have_mine) unlock("unlock a.lock", mine);
}

bool exports_wasi_cli_run_run(void) {
  // Each preopen comes as an owned descriptor and its path: the list-free function frees the
  // paths and the list, not the descriptors, so every one is dropped here.
  wasi_filesystem_preopens_list_tuple2_own_descriptor_string_t preopens;
  wasi_filesystem_preopens_get_directories(&preopens);
  descriptor_t work = {-1};
  for (size_t i = 0; i < preopens.len; i++) {
    plugin_string_t *path = &preopens.ptr[i].f1;
    if (work.__handle == -1 && path->len == 5 && memcmp(path->ptr, "/work", 5) == 0) {
      work = preopens.ptr[i].f0;
    } else {
      wasi_filesystem_types_descriptor_drop_own(preopens.ptr[i].f0);
    }
  }
  wasi_filesystem_preopens_list_tuple2_own_descriptor_string_free(&preopens);
  if (work.__handle == -1) {
    fprintf(stderr, "c guest: run it with a directory granted at /work\n");
    return false;  // `run` failing: a non-zero exit
  }
  steps(wasi_filesystem_types_borrow_descriptor(work));
  wasi_filesystem_types_descriptor_drop_own(work);
  // A reactor's `run` is not `main`: libc's exit handlers never run, so what stdout buffered
  // would be lost without this.
  fflush(stdout);
  return true;
}
