// Drives a real `vfs serve` through the client: node clients/js/test.mjs
// (VFS_BIN names the binary, default `vfs` on PATH). Exits non-zero on the first failed
// check; prints one JSON summary line for tests/js_client.rs on success.

import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { VfsClient, VfsError } from './vfs-client.mjs';

const bin = process.env.VFS_BIN ?? 'vfs';
const dir = mkdtempSync(join(tmpdir(), 'vfs-js-'));
const host = join(dir, 'host');
mkdirSync(host);
writeFileSync(join(host, 'seed.txt'), 'seeded on the host\n');

const summary = { events: [] };
const vfs = VfsClient.spawn({ bin, store: join(dir, 'store') });
vfs.on('event', (event) => summary.events.push(event.type));

function eventually(type, predicate = () => true) {
  return new Promise((resolve) => {
    const listener = (event) => {
      if (predicate(event)) {
        vfs.off(type, listener);
        resolve(event);
      }
    };
    vfs.on(type, listener);
  });
}

try {
  // After boot: a memory mount and a host directory mount.
  const mountedEvent = eventually('mounted', (e) => e.path === '/work');
  const work = await vfs.mountFs('/work', { id: 'memory', config: {} });
  assert.equal(work.kind, 'memory');
  assert.equal((await mountedEvent).mountId, work.mountId);
  const hostMount = await vfs.mountFs('/host', { id: 'host_dir', config: { hostPath: host, readOnly: false } });
  assert.equal(hostMount.kind, 'host_dir');

  // Text and binary content, through both mounts.
  await vfs.writeFile('/work/notes.txt', 'hello from node');
  assert.equal(await vfs.readTextFile('/work/notes.txt'), 'hello from node');
  const blob = Buffer.alloc(300_000);
  for (let i = 0; i < blob.length; i++) blob[i] = (i * 7919) & 0xff;
  await vfs.writeFile('/host/blob.bin', blob);
  assert.ok(readFileSync(join(host, 'blob.bin')).equals(blob), 'the host file holds the bytes');
  assert.ok((await vfs.readFile('/host/blob.bin')).equals(blob));
  assert.equal(await vfs.readTextFile('/host/seed.txt'), 'seeded on the host\n');
  summary.blobBytes = blob.length;

  const entries = await vfs.readDirEntries('/');
  summary.rootEntries = entries.map((e) => `${e.name}:${e.kind}`);

  // Errors carry the errno code and the path.
  try {
    await vfs.readFile('/work/missing');
    assert.fail('reading a missing file succeeded');
  } catch (err) {
    assert.ok(err instanceof VfsError);
    summary.missing = { code: err.code, path: err.path };
  }

  // Requests in flight together.
  await Promise.all(Array.from({ length: 20 }, (_, i) => vfs.writeFile(`/work/n${i}`, `${i}`)));
  const back = await Promise.all(Array.from({ length: 20 }, (_, i) => vfs.readTextFile(`/work/n${i}`)));
  assert.deepEqual(back, Array.from({ length: 20 }, (_, i) => `${i}`));

  const finished = eventually('snapshotFinished');
  const snapshot = await vfs.snapshotRootFilesystem({ tag: 'from-js' });
  assert.match(snapshot.snapshotId, /^[0-9a-f]{64}$/);
  assert.equal((await finished).snapshotId, snapshot.snapshotId);
  summary.snapshotId = snapshot.snapshotId;
  summary.snapshotFiles = snapshot.stats.files;

  const exported = await vfs.exportSnapshot('from-js', { format: 'tar.zst' });
  assert.ok(Buffer.isBuffer(exported.data));
  const imported = await vfs.importSnapshot({ format: 'tar.zst', data: exported.data });
  assert.equal(imported.snapshotId, snapshot.snapshotId);

  summary.mounts = (await vfs.listMounts()).map((m) => `${m.path}:${m.kind}:${m.readOnly}`);
  assert.ok(!JSON.stringify(await vfs.listMounts()).includes('hostPath'));

  const unmountedEvent = eventually('unmounted', (e) => e.path === '/host');
  await vfs.unmountFs('/host');
  await unmountedEvent;
  await vfs.unmountFs('/work');
  summary.mountsAfter = (await vfs.listMounts()).map((m) => m.path);

  const exit = await vfs.close();
  summary.exitCode = exit.code;

  // The same client over the Unix socket, against a second server.
  const socketPath = join(dir, 'vfs.sock');
  const server = spawn(bin, ['serve', '--socket', socketPath, '--store', join(dir, 'store')], { stdio: ['ignore', 'ignore', 'inherit'] });
  let socketClient;
  for (const deadline = Date.now() + 30_000; !socketClient; ) {
    try {
      socketClient = await VfsClient.connect(socketPath);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  const snapshots = await socketClient.listSnapshots();
  summary.socketSnapshots = snapshots.map((s) => s.tags).flat();
  await socketClient.close();
  server.kill('SIGTERM');
  const [code] = await once(server, 'exit');
  summary.socketServerExit = code;

  // A missing binary and a server gone mid-session fail the calls instead of crashing node.
  const missing = VfsClient.spawn({ bin: '/nonexistent/vfs', stderr: 'ignore' });
  await assert.rejects(missing.listMounts(), (err) => err.code === 'ENOENT');
  const doomed = VfsClient.spawn({ bin, store: join(dir, 'doomed-store') });
  await doomed.listMounts();
  doomed.process.kill('SIGKILL');
  await doomed.closed;
  await assert.rejects(doomed.listMounts());
  summary.failureHandling = 'ok';

  console.log(JSON.stringify(summary));
} finally {
  if (vfs.process.exitCode === null) vfs.process.kill();
  rmSync(dir, { recursive: true, force: true });
}

