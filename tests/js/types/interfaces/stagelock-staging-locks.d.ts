/// <reference path="./wasi-clocks-monotonic-clock.d.ts" />
/// <reference path="./wasi-filesystem-types.d.ts" />
/// <reference path="./wasi-io-poll.d.ts" />
declare module 'stagelock:staging/locks@1.0.1' {
  /**
   * Creates a fresh file in `dir` with a name from `pattern`, locks it, and returns the lock
   * and the file's base name.
   * 
   * A random decimal number replaces the last `*` in `pattern`, or is appended if there is
   * none (`"lock-"` gives `lock-3141592653`), as Go's `os.CreateTemp` does. The file is
   * created with `O_EXCL` and mode 0600. Callers derive the name of the resource the lock
   * guards from it (`lock-ID` guards `temp-dir-ID`).
   * 
   * Similar to `openat(dir, name, O_CREAT | O_EXCL | O_RDWR, 0600)` followed by
   * `fcntl(fd, F_OFD_SETLK, F_WRLCK)`. Never blocks.
   * 
   * Fails with:
   * - `invalid`: a `/` in `pattern`, a NUL byte, a name that would be too long;
   * - `read-only`: `dir` was granted read-only;
   * - `not-directory`: `dir` is not a directory;
   * - `limit-reached`: the host's cap on this instance's locks, or the host is out of file
   *   descriptors.
   */
  export function createAndLock(dir: Descriptor, pattern: string): [StagingLock, string];
  /**
   * Locks the file at `path` beneath `dir`, creating it if it is missing (parents are never
   * created).
   * 
   * Similar to `openat(dir, path, O_CREAT | O_RDWR | O_NOFOLLOW, 0644)` followed by
   * `fcntl(fd, F_OFD_SETLK, F_WRLCK)`. Never blocks.
   * 
   * Fails with:
   * - `would-block`: someone else holds it (this component too, through another handle);
   * - `not-permitted`: `..` climbing out, an absolute path, a symbolic link on the way that
   *   leads out;
   * - `not-a-file`: the path names a directory (also with a trailing slash), FIFO, socket,
   *   device or symbolic link (leading inside or out, with or without a trailing slash:
   *   never followed), or its symbolic links on the way loop;
   * - `no-entry`: a directory on the way is missing or is not a directory;
   * - `invalid`: an empty path, a NUL byte, a name or path that is too long;
   * - `read-only`: `dir` was granted read-only;
   * - `not-directory`: `dir` is not a directory;
   * - `limit-reached`: the host's cap on this instance's locks, or the host is out of file
   *   descriptors.
   */
  export function tryLockPath(dir: Descriptor, path: string): StagingLock;
  /**
   * Starts waiting for the lock on the file at `path` beneath `dir`, creating the file if it
   * is missing, as `try-lock-path` does, for at most `timeout` (`none`: no limit). Makes the
   * first attempt at once: a free lock is ready on the first `get`.
   * 
   * Fails only when no attempt can be made: `read-only` for a read-only grant,
   * `not-directory` when `dir` is not a directory, `limit-reached` at the host's cap. What
   * the attempts find comes from `lock-request.get`, with `try-lock-path`'s cases (escapes
   * `not-permitted`, a directory or symbolic link `not-a-file`, a missing parent
   * `no-entry`, ...), and `would-block` when the timeout passed with the lock still held.
   */
  export function requestLock(dir: Descriptor, path: string, timeout: Duration | undefined): LockRequest;
  export type Descriptor = import('wasi:filesystem/types@0.2.12').Descriptor;
  export type Pollable = import('wasi:io/poll@0.2.12').Pollable;
  export type Duration = import('wasi:clocks/monotonic-clock@0.2.12').Duration;
  /**
   * Why an operation failed.
   * 
   * As in WASI's own interfaces, the common failures are a bare case: a refused lock costs
   * the component one discriminant, no string. Only `other` carries the host's text, for the
   * failures a component cannot describe by itself (an I/O error). Case names follow
   * `wasi:filesystem/types.error-code` where the meaning is the same; the POSIX analogue
   * of each case is given.
   */
  export type ErrorCode = ErrorCodeWouldBlock | ErrorCodeNoEntry | ErrorCodeInvalid | ErrorCodeAccess | ErrorCodeNotPermitted | ErrorCodeReadOnly | ErrorCodeNotAFile | ErrorCodeNotDirectory | ErrorCodeLimitReached | ErrorCodeExist | ErrorCodeCrossDevice | ErrorCodeLockLost | ErrorCodeOther;
  /**
   * The lock is held by someone else: another component, this component through another
   * handle, or a native process. For a `lock-request`, still held when its timeout ran
   * out. POSIX: `EWOULDBLOCK` / `EAGAIN` from `fcntl(F_SETLK)`.
   */
  export interface ErrorCodeWouldBlock {
    tag: 'would-block',
  }
  /**
   * A directory on the way to the path does not exist (parents are never created) or is
   * not a directory, or a file that must exist does not (a stage's resource its owner
   * removed). POSIX: `ENOENT`, `ENOTDIR`.
   */
  export interface ErrorCodeNoEntry {
    tag: 'no-entry',
  }
  /**
   * A malformed argument: a `/` in a pattern, an empty path, a NUL byte, a name that is
   * too long, a destination with no final name (empty, `.`). POSIX: `EINVAL`,
   * `ENAMETOOLONG`.
   */
  export interface ErrorCodeInvalid {
    tag: 'invalid',
  }
  /**
   * The host's filesystem refused access to the path. POSIX: `EACCES`.
   */
  export interface ErrorCodeAccess {
    tag: 'access',
  }
  /**
   * The path escapes the directory it is resolved in (`..` climbing out, an absolute
   * path, a symbolic link on the way that leads out; a stage's resource replaced by a
   * symbolic link leading out), or the host refused the operation (a host that refuses
   * directories whose locks would not reach other hosts). POSIX: `EPERM`.
   */
  export interface ErrorCodeNotPermitted {
    tag: 'not-permitted',
  }
  /**
   * The directory was granted read-only, or its filesystem is read-only. POSIX: `EROFS`.
   */
  export interface ErrorCodeReadOnly {
    tag: 'read-only',
  }
  /**
   * The path does not lead to a regular file: it names a directory, FIFO, socket, device
   * or symbolic link (never followed, even with a trailing slash), or its symbolic links
   * on the way loop. For a commit, the stage's resource is no longer a directory (its
   * owner put a file there). POSIX: `EISDIR`, `ELOOP`, `ENXIO`. (No WASI counterpart.)
   */
  export interface ErrorCodeNotAFile {
    tag: 'not-a-file',
  }
  /**
   * The descriptor passed as the directory is not a directory. POSIX: `ENOTDIR`.
   */
  export interface ErrorCodeNotDirectory {
    tag: 'not-directory',
  }
  /**
   * Too many locks are held: the host's cap on this instance's locks and lock requests,
   * or the host is out of file descriptors. POSIX: `EMFILE`, `ENFILE`. (No WASI
   * counterpart.)
   */
  export interface ErrorCodeLimitReached {
    tag: 'limit-reached',
  }
  /**
   * The destination of a commit already exists. POSIX: `EEXIST`.
   */
  export interface ErrorCodeExist {
    tag: 'exist',
  }
  /**
   * The destination of a commit is on another filesystem than the staging area. POSIX:
   * `EXDEV`.
   */
  export interface ErrorCodeCrossDevice {
    tag: 'cross-device',
  }
  /**
   * The lock was lost while held: someone deleted its file (and maybe locked a new one at
   * its path), or another holder has a lock on it (a distributed filesystem expired it).
   * Nothing was committed. POSIX: none; `ESTALE` is the closest. (No WASI counterpart.)
   */
  export interface ErrorCodeLockLost {
    tag: 'lock-lost',
  }
  /**
   * Any other failure on the host (`EIO`, `ENOSPC`, ...), and kinds of failure added
   * after 1.0.0, with the host's description, which names the operation and the path.
   * This host always sends the text (`some`); `none` is in the type only because 1.0.0
   * shipped it so.
   */
  export interface ErrorCodeOther {
    tag: 'other',
    val: string | undefined,
  }
  export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
  
  export class LockRequest implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    /**
    * A pollable that is ready once `get` has the outcome: the lock, or why not.
    */
    subscribe(): Pollable;
    /**
    * The outcome, shaped as `wasi:http`'s `future-incoming-response.get`:
    * 
    * - `none` while the lock is still held by someone else and time is left;
    * - `some(ok(ok(lock)))` once the lock is taken;
    * - `some(ok(err(code)))` once the wait failed: `would-block` when the timeout
    *   passed, or any error `try-lock-path` returns (those end the wait at once);
    * - `some(err)` when the outcome was already taken by an earlier `get`.
    * 
    * Makes one attempt itself (without blocking) if none has succeeded yet, so a component
    * may also call it from its own loop. Dropping a request whose lock was taken but not
    * fetched releases the lock and keeps the file, as dropping a `staging-lock` does.
    */
    get(): Result<Result<StagingLock, ErrorCode>, void> | undefined;
    [Symbol.dispose](): void;
  }
  
  export class StagingLock implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    /**
    * The lock file's path, relative to the directory it was locked in.
    */
    path(): string;
    /**
    * Deletes the lock file while still holding the lock, then releases the lock.
    * 
    * Consumes the handle: it is gone whatever the outcome, so a second call cannot be
    * expressed. A file that is already gone (someone deleted it) is not an error: `ok`.
    * Fails only with `other`, for an I/O error of the host's.
    * 
    * Similar to `unlinkat(dir, path, 0)` followed by `close(fd)`.
    */
    static unlockAndDelete(this_: StagingLock): void;
    [Symbol.dispose](): void;
  }
}
