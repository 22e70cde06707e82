/// <reference path="./stagelock-staging-locks.d.ts" />
/// <reference path="./wasi-filesystem-types.d.ts" />
declare module 'stagelock:staging/staging@1.0.0' {
  export type Descriptor = import('wasi:filesystem/types@0.2.12').Descriptor;
  export type ErrorCode = import('stagelock:staging/locks@1.0.0').ErrorCode;
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
   * A failed commit: why, and the stage handed back (absent if the failure came after the
   * resource was already in place, or the lock was lost).
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
    */
    dir(): Descriptor;
    /**
    * Moves the resource to `dest` beneath `dest-dir` (one atomic rename on the same
    * filesystem) durably (`durability::full`) while still holding the lock, then
    * unlock-and-deletes. An existing `dest`
    * fails with `exist` unless `replace` is set. Consumes the handle; on failure
    * the stage comes back in the error, still held, to retry or abort.
    * 
    * Right before the rename, the lock is checked to be still ours; if it was lost
    * (`lock-lost`), nothing is renamed and the stage is left for recovery (not handed back).
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
    * handle.
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
    * a directory.
    */
    static open(root: Descriptor, layout: Layout): StagingArea;
    /**
    * Starts a stage: takes a fresh lock, then creates the resource directory it guards.
    * Counts against the host's cap on held locks (`limit-reached`). Never blocks.
    */
    stage(): Stage;
    /**
    * Removes every stage whose lock is free (its builder is gone), resource first, lock
    * file last; orphans too. Skips held stages. With `dry-run`, changes nothing and
    * reports what it would remove. Never blocks.
    */
    recoverStale(dryRun: boolean): Report;
    [Symbol.dispose](): void;
  }
}
