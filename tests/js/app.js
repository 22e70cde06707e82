// @ts-check
/// <reference path="./types/plugin.d.ts" />
/**
 * A guest in JavaScript, built from wit/ as it is by componentize-js (tests/js/build.mjs;
 * tests/components/js_guest.rs runs it).
 *
 * Run with /work granted, while this host holds `held.lock` and another process holds `py.lock`
 * with Python's `fcntl.lockf`, and a dead builder's stage `lock-7` + `temp-dir-7` lies in
 * `staging/`. Prints one line per step: `ok STEP DETAIL` or `err STEP CODE`.
 *
 * A failing call throws; what it throws carries the WIT `error-code` as `payload`, a bare case
 * (`{ tag: 'would-block' }`) for every common failure: no string crosses for a refusal.
 */

import { requestLock, tryLockPath, StagingLock } from 'stagelock:staging/locks@1.0.1';
import { StagingArea, Stage } from 'stagelock:staging/staging@1.0.1';
import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';
import { subscribeDuration } from 'wasi:clocks/monotonic-clock@0.2.12';
import { poll } from 'wasi:io/poll@0.2.12';

/** The WIT case of what a failed call threw, with the host's text for `other`. */
function code(e) {
  const payload = e?.payload ?? e;
  if (payload?.tag === undefined) throw e; // not an error-code: a bug of ours, let it show
  return payload.val === undefined ? payload.tag : `${payload.tag}: ${payload.val}`;
}

/** Runs `step`, prints `ok NAME DETAIL` (DETAIL from what it returned) or `err NAME CODE`. */
function show(name, step, detail = () => '') {
  try {
    const taken = step();
    const more = detail(taken);
    console.log(more === '' ? `ok ${name}` : `ok ${name} ${more}`);
    return taken;
  } catch (e) {
    console.log(`err ${name} ${code(e)}`);
    return undefined;
  }
}

/** Waits for `request` (polling its pollable) and prints the outcome of its `get`. */
function wait(name, request) {
  const ready = request.subscribe();
  ready.block();
  ready[Symbol.dispose]();
  const outcome = request.get();
  if (outcome?.tag === 'ok' && outcome.val.tag === 'ok') {
    console.log(`ok ${name} ${outcome.val.val.path()}`);
    return outcome.val.val;
  }
  if (outcome?.tag === 'ok') {
    console.log(`err ${name} ${code(outcome.val.val)}`);
    return undefined;
  }
  throw new Error(`${name}: unexpected outcome ${JSON.stringify(outcome)}`);
}

/**
 * Commits `stage` to `dest` beneath `dir`, which must be refused: prints the refusal's code and
 * whether the stage came back (`err commit NAME CODE (stage back: B)`), then aborts it as `abort`.
 */
function refusedCommit(name, stage, dir, dest, abort) {
  try {
    Stage.commit(stage, dir, dest, false);
    console.log(`unexpected: commit ${name} succeeded`);
  } catch (e) {
    const failed = e.payload;
    console.log(`err commit ${name} ${code(failed.code)} (stage back: ${failed.stage !== undefined})`);
    show(abort, () => Stage.abort(failed.stage));
  }
}

/** Writes `text` to the file `name` in `stage`'s resource directory, through wasi:filesystem. */
function write(stage, name, text) {
  const dir = stage.dir();
  const file = dir.openAt({}, name, { create: true }, { write: true });
  file.write(new TextEncoder().encode(text), 0n);
  file[Symbol.dispose]();
  dir[Symbol.dispose]();
}

export const run = {
  run() {
    const [[work]] = getDirectories().filter(([, path]) => path === '/work');

    // Locks, and refusals by a holder in the host and by a containers/storage-style one.
    const mine = show('try a.lock', () => tryLockPath(work, 'a.lock'), (l) => l.path());
    show('try held.lock', () => tryLockPath(work, 'held.lock'));
    show('try py.lock', () => tryLockPath(work, 'py.lock'));

    // Waits: in vain with a timeout, for a free lock, and for one of two locks or a clock.
    wait('wait held.lock', requestLock(work, 'held.lock', 200_000_000n));
    const free = wait('wait c.lock', requestLock(work, 'c.lock', undefined));
    StagingLock.unlockAndDelete(free);
    const busy = requestLock(work, 'py.lock', undefined);
    const d = requestLock(work, 'd.lock', undefined);
    const giveUp = subscribeDuration(60_000_000_000n);
    const [busyReady, dReady] = [busy.subscribe(), d.subscribe()];
    console.log(`ok poll ${JSON.stringify(Array.from(poll([busyReady, dReady, giveUp])))}`);
    [busyReady, dReady, giveUp, busy].forEach((handle) => handle[Symbol.dispose]());
    StagingLock.unlockAndDelete(wait('wait d.lock', d));

    // A staging area: commit, commit replacing without syncing, abort, recover.
    const root = work.openAt({}, 'staging', { directory: true }, { mutateDirectory: true });
    const area = StagingArea.open(root, 'pairs');
    show('recover', () => area.recoverStale(false), (r) => `${r.removed.map((s) => s.id)} ${r.skipped.length}`);
    for (const [text, options] of [
      ['first', { replace: false, durability: 'full' }],
      ['second', { replace: true, durability: 'none' }],
    ]) {
      const stage = area.stage();
      write(stage, 'built.txt', text);
      show(`commit ${text}`, () => Stage.commitWith(stage, work, 'out', options));
    }
    const refused = area.stage();
    write(refused, 'built.txt', 'third');
    refusedCommit('third', refused, work, 'out', 'abort');
    // The owner's own mistake: its resource removed before the commit. The commit fails with
    // no-entry before anything moves and hands the stage back, still held, to abort.
    const vanished = area.stage();
    root.removeDirectoryAt(vanished.path());
    refusedCommit('vanished', vanished, work, 'gone', 'abort vanished');

    StagingLock.unlockAndDelete(mine);
    console.log('ok unlock a.lock');
  },
};
