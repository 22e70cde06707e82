/// <reference path="./stagelock-staging-locks.d.ts" />
/// <reference path="./wasi-filesystem-types.d.ts" />
declare module 'stagelock:staging/staging@1.0.1' {
  export type Descriptor = import('wasi:filesystem/types@0.2.12').Descriptor;
  export type ErrorCode = import('stagelock:staging/locks@1.0.1').ErrorCode;
  /**
   * How stages are laid out in an area's root directory.
   * # Variants
   * 
   * ## `"pairs"`
   * 
   * `lock-ID` beside `temp-dir-ID` (containers/storage's deferred-deletion temp dirs).
   * ## `"per-directory"`
   * 
   * `<N>/staging.lock` and the resource `<N>/dir` (containers/storage's overlay staging).
   */
  export type Layout = 'pairs' | 'per-directory';
  /**
   * How durable a commit is.
   * # Variants
   * 
   * ## `"full"`
   * 
   * Before the rename, `fsync` every file and directory of the resource; after it, the
   * directories the resource left and entered. After the commit returns, a power cut
   * finds every committed byte.
   * ## `"none"`
   * 
   * Rename only: faster, but a power cut soon after may leave the result's files empty
   * or missing. For results that are cheap to rebuild.
   */
  export type Durability = 'full' | 'none';
  /**
   * How `stage.commit-with` commits.
   */
  export interface CommitOptions {
    /**
     * Replace an existing `dest` instead of failing with `exist`.
     */
    replace: boolean,
    /**
     * How durable the commit is.
     */
    durability: Durability,
  }
  /**
   * A failed commit: why, and the stage handed back (absent only if the failure came after
   * the resource was already in place, or the lock was lost).
   * 
   * A record rather than a bare `error-code`, because a commit consumes its stage and a
   * caller that was refused (`exist`, say) needs it back to retry or abort, as Rust's
   * `tempfile` hands back the file in its `PersistError`.
   */
  export interface CommitError {
    /**
     * What went wrong.
     */
    code: ErrorCode,
    /**
     * The stage, still held.
     */
    stage?: Stage,
  }
  /**
   * A stage recovery removed (or, in a dry run, would remove).
   */
  export interface Recovered {
    /**
     * The stage's ID.
     */
    id: string,
    /**
     * Whether it had a lock file (false: an orphan resource).
     */
    hadLock: boolean,
    /**
     * Whether it had a resource (false: an orphan lock file).
     */
    hadResource: boolean,
  }
  /**
   * Why recovery left a stage alone.
   */
  export type SkipReason = SkipReasonHeld | SkipReasonVanished | SkipReasonFailed | SkipReasonNotAStage;
  /**
   * Its lock is held: the builder is alive.
   */
  export interface SkipReasonHeld {
    tag: 'held',
  }
  /**
   * It disappeared meanwhile: its builder finished.
   */
  export interface SkipReasonVanished {
    tag: 'vanished',
  }
  /**
   * Removing it failed; it stays stale for the next run.
   */
  export interface SkipReasonFailed {
    tag: 'failed',
    val: ErrorCode,
  }
  /**
   * It is named like a stage but holds something a stage never does (a stage is at most
   * its lock file and its resource directory): it is not removed, whatever its lock says.
   */
  export interface SkipReasonNotAStage {
    tag: 'not-a-stage',
  }
  /**
   * A stage recovery left alone.
   */
  export interface Skipped {
    /**
     * The stage's ID.
     */
    id: string,
    /**
     * Why.
     */
    reason: SkipReason,
    /**
     * For people: the reason, with the host's error for `failed`. (A report is made once
     * per recovery, not per lock: its strings cost nothing that matters.)
     */
    message: string,
  }
  /**
   * What recovery did.
   */
  export interface Report {
    /**
     * Whether this was a dry run.
     */
    dryRun: boolean,
    /**
     * Stages removed (or that would be).
     */
    removed: Array<Recovered>,
    /**
     * Stages left alone.
     */
    skipped: Array<Skipped>,
  }
  
  export class Stage implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    /**
    * The stage's ID (`ID` of `temp-dir-ID`, or `<N>`).
    */
    id(): string;
    /**
    * The resource directory's path relative to the area's root.
    */
    path(): string;
    /**
    * A new descriptor for the resource directory, to build in with `wasi:filesystem`.
    * 
    * The host duplicates its own handle of the directory, so this works even after the
    * resource was removed or moved by its owner. Fails only with `limit-reached`, when the
    * host is out of file descriptors.
    */
    dir(): Descriptor;
    /**
    * Moves the resource to `dest` beneath `dest-dir` (one atomic rename on the same
    * filesystem) durably (`durability::full`) while still holding the lock, then
    * unlock-and-deletes. An existing `dest` fails with `exist` unless `replace` is set. A
    * trailing slash on `dest` is ignored; a symbolic link at `dest` is never followed: it
    * exists (`exist`), and `replace` replaces the link itself. Consumes the handle; on
    * failure the stage comes back in the error, still held, to retry or abort.
    * 
    * Right before the rename, the lock is checked to be still ours; if it was lost
    * (`lock-lost`), nothing is renamed and the stage is left for recovery (not handed back).
    * 
    * Fails with, the stage handed back for each but `lock-lost`:
    * - `exist`: `dest` exists (a symbolic link included) and `replace` is not set;
    * - `no-entry`: a directory on the way to `dest` is missing, or the stage's resource is
    *   gone (its owner removed it);
    * - `not-permitted`: `dest` climbs out of `dest-dir` (`..`, absolute, a symbolic link on
    *   the way that leads out), or the resource was replaced by a symbolic link leading out;
    * - `not-a-file`: the symbolic links on the way to `dest` loop, or the resource was
    *   replaced by a file;
    * - `invalid`: `dest` is empty or has no final name (`.`);
    * - `read-only`: `dest-dir` was granted read-only;
    * - `not-directory`: `dest-dir` is not a directory;
    * - `cross-device`: `dest` is on another filesystem than the staging area;
    * - `limit-reached`: the host is out of file descriptors;
    * - `lock-lost`: the stage's lock file was deleted or another holder has a lock on it.
    * 
    * Similar to `renameat2(src, dest, RENAME_NOREPLACE)`.
    */
    static commit(this_: Stage, destDir: Descriptor, dest: string, replace: boolean): void;
    /**
    * `commit`, with `options`: whether to replace an existing `dest`, and how durable the
    * commit is.
    */
    static commitWith(this_: Stage, destDir: Descriptor, dest: string, options: CommitOptions): void;
    /**
    * Removes the resource while holding the lock, then unlock-and-deletes. Consumes the
    * handle. A resource its owner already removed, or a lock file someone deleted, is not
    * an error (`ok`); it fails only with `other`, for an I/O error of the host's.
    */
    static abort(this_: Stage): void;
    [Symbol.dispose](): void;
  }
  
  export class StagingArea implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    /**
    * Opens the staging area rooted at `root`, a directory the caller holds.
    * 
    * Fails with `read-only` for a read-only grant and `not-directory` when `root` is not
    * a directory; nothing else.
    */
    static open(root: Descriptor, layout: Layout): StagingArea;
    /**
    * Starts a stage: takes a fresh lock, then creates the resource directory it guards.
    * Counts against the host's cap on held locks. Never blocks.
    * 
    * Fails with `limit-reached` at the host's cap or when the host is out of file
    * descriptors, `no-entry` when the area's root was removed.
    */
    stage(): Stage;
    /**
    * Removes every stage whose lock is free (its builder is gone), resource first, lock
    * file last; orphans too. Skips held stages. With `dry-run`, changes nothing and
    * reports what it would remove. Never blocks.
    * 
    * What fails for one stage is in the report (`skip-reason.failed`); the call itself
    * fails only when the root cannot be listed: `limit-reached` when the host is out of
    * file descriptors, `other` for an I/O error. A root removed meanwhile holds nothing:
    * an empty report.
    */
    recoverStale(dryRun: boolean): Report;
    [Symbol.dispose](): void;
  }
}
