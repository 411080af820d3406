// A dependency-free client of `vfs serve` (JSON-RPC 2.0 with binary attachment frames,
// see PROTOCOL.md) for node 20 and later.
//
//   import { VfsClient } from './vfs-client.mjs';
//   const vfs = VfsClient.spawn({ bin: 'vfs', store: './.vfs-store' });
//   vfs.on('mounted', (event) => console.log('mounted', event.path));
//   await vfs.mountFs('/work', { id: 'memory', config: {} });
//   await vfs.writeFile('/work/a.txt', 'hello');
//   console.log((await vfs.readFile('/work/a.txt')).toString());
//   await vfs.close();

import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import net from 'node:net';

/** An action that failed: `code` is the errno string ("ENOENT"), `path` the path concerned. */
export class VfsError extends Error {
  constructor(error) {
    super(error.message);
    this.name = 'VfsError';
    this.rpcCode = error.code;
    this.code = error.data?.code ?? 'EIO';
    this.path = error.data?.path;
  }
}

const HEADER = 4;

/** Splits a byte stream into messages: a JSON frame and the attachment frames it announces. */
class FrameReader {
  constructor(onMessage) {
    this.onMessage = onMessage;
    this.chunks = [];
    this.length = 0;
    this.pending = null; // a JSON message waiting for its attachments
  }

  push(chunk) {
    this.chunks.push(chunk);
    this.length += chunk.length;
    for (;;) {
      const frame = this.#nextFrame();
      if (frame === null) return;
      if (this.pending === null) {
        const json = JSON.parse(frame.toString('utf8'));
        this.pending = { json, attachments: [], expected: json.attachments ?? 0 };
      } else {
        this.pending.attachments.push(frame);
      }
      if (this.pending.attachments.length === this.pending.expected) {
        const { json, attachments } = this.pending;
        this.pending = null;
        this.onMessage(json, attachments);
      }
    }
  }

  #nextFrame() {
    if (this.length < HEADER) return null;
    // The header alone decides whether the frame is complete; joining the chunks only
    // then keeps a large frame arriving in many chunks linear, not quadratic.
    if (this.chunks[0].length < HEADER) this.chunks = [Buffer.concat(this.chunks)];
    const size = this.chunks[0].readUInt32BE(0);
    if (this.length < HEADER + size) return null;
    const buffer = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const frame = buffer.subarray(HEADER, HEADER + size);
    const rest = buffer.subarray(HEADER + size);
    this.chunks = rest.length ? [rest] : [];
    this.length = rest.length;
    return frame;
  }
}

function frame(bytes) {
  const header = Buffer.alloc(HEADER);
  header.writeUInt32BE(bytes.length, 0);
  return [header, bytes];
}

function toBuffer(data) {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('data must be a string, a Buffer or a Uint8Array');
}

/**
 * A connection to `vfs serve`. Every action is a method returning a promise; events
 * arrive as `'event'` (every event) and under their type (`'mounted'`, `'unmounted'`,
 * `'snapshotProgress'`, `'snapshotFinished'`, `'driverError'`); `'eventsLost'` says how
 * many a slow reader missed.
 */
export class VfsClient extends EventEmitter {
  /** Speaks the protocol over any readable and writable byte streams. */
  constructor(readable, writable) {
    super();
    this.writable = writable;
    this.nextId = 1;
    this.waiting = new Map();
    this.reader = new FrameReader((json, attachments) => this.#receive(json, attachments));
    this.ended = null;
    this.closed = new Promise((resolve) => {
      readable.on('data', (chunk) => {
        // A message that does not parse means the stream cannot be followed: fail what
        // is waiting and stop reading, rather than throw out of node's event loop.
        try {
          this.reader.push(chunk);
        } catch (err) {
          this.#fail(new Error(`unreadable message from the server: ${err.message}`));
          readable.destroy();
        }
      });
      readable.on('close', resolve);
      readable.on('end', resolve);
      // A broken pipe or reset: fail the requests in flight instead of crashing node.
      readable.on('error', (err) => {
        this.#fail(err);
        resolve();
      });
      writable.on('error', (err) => this.#fail(err));
    }).then(() => this.#fail(new Error('the server closed the connection')));
  }

  #fail(err) {
    this.ended ??= err;
    for (const { reject } of this.waiting.values()) reject(err);
    this.waiting.clear();
  }

  /** Spawns `bin serve --stdio` (with `--store` and `--mounts` when given) and talks to it. */
  static spawn({ bin = 'vfs', store, mounts, args = [], stderr = 'inherit' } = {}) {
    const argv = ['serve', '--stdio', ...args];
    if (store) argv.push('--store', store);
    if (mounts) argv.push('--mounts', mounts);
    const child = spawn(bin, argv, { stdio: ['pipe', 'pipe', stderr] });
    const client = new VfsClient(child.stdout, child.stdin);
    child.on('error', (err) => client.#fail(err)); // e.g. ENOENT: no such binary
    client.process = child;
    client.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => resolve({ code, signal }));
      child.on('error', () => resolve({ code: null, signal: null }));
    });
    return client;
  }

  /** Connects to `vfs serve --socket PATH`. */
  static connect(socketPath) {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(socketPath);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new VfsClient(socket, socket));
      });
    });
  }

  #receive(json, attachments) {
    if (json.id === undefined) {
      if (json.method === 'event') {
        this.emit('event', json.params);
        this.emit(json.params.type, json.params);
      } else if (json.method === 'eventsLost') {
        this.emit('eventsLost', json.params.count);
      }
      return;
    }
    const waiter = this.waiting.get(json.id);
    if (!waiter) return; // an answer to an id we never sent: nothing to resolve
    this.waiting.delete(json.id);
    if (json.error) waiter.reject(new VfsError(json.error));
    else waiter.resolve(resolveAttachments(json.result, attachments));
  }

  /**
   * Sends one request. `attachments` are Buffers the params name as `{attachment: i}`;
   * in the result, `{attachment: i}` values are replaced by the Buffers that came back.
   */
  request(method, params = {}, attachments = []) {
    const id = this.nextId++;
    const message = { jsonrpc: '2.0', id, method, params };
    if (attachments.length) message.attachments = attachments.length;
    const parts = frame(Buffer.from(JSON.stringify(message), 'utf8'));
    for (const attachment of attachments) parts.push(...frame(attachment));
    return new Promise((resolve, reject) => {
      if (this.ended) {
        reject(this.ended);
        return;
      }
      this.waiting.set(id, { resolve, reject });
      this.writable.write(Buffer.concat(parts));
    });
  }

  mountFs(path, driver, options = {}) {
    return this.request('mountFs', { path, driver, options });
  }

  unmountFs(path, { lazy = false } = {}) {
    return this.request('unmountFs', { path, lazy });
  }

  listMounts() {
    return this.request('listMounts');
  }

  snapshotRootFilesystem({ path, tag, normalize } = {}) {
    return this.request('snapshotRootFilesystem', clean({ path, tag, normalize }));
  }

  restoreSnapshot(snapshot, path) {
    return this.request('restoreSnapshot', { snapshot, path });
  }

  diffSnapshots(from, { to, path } = {}) {
    return this.request('diffSnapshots', clean({ from, to, path }));
  }

  /** Without `hostPath`, the archive comes back as `result.data` (a Buffer). */
  exportSnapshot(snapshot, { format = 'tar.zst', hostPath } = {}) {
    return this.request('exportSnapshot', clean({ snapshot, format, hostPath }));
  }

  /** `data` (Buffer) or `hostPath`. */
  importSnapshot({ format = 'tar.zst', data, hostPath, tag } = {}) {
    if (data !== undefined) {
      return this.request('importSnapshot', clean({ format, tag, data: { attachment: 0 } }), [toBuffer(data)]);
    }
    return this.request('importSnapshot', clean({ format, hostPath, tag }));
  }

  listSnapshots() {
    return this.request('listSnapshots');
  }

  /** The content as a Buffer. */
  async readFile(path) {
    return (await this.request('readFile', { path })).data;
  }

  async readTextFile(path) {
    return (await this.readFile(path)).toString('utf8');
  }

  /** `data`: a string (UTF-8), a Buffer or a Uint8Array; sent as a binary frame. */
  writeFile(path, data) {
    return this.request('writeFile', { path, data: { attachment: 0 } }, [toBuffer(data)]);
  }

  /** `[{name, kind, ino}]`. */
  readDirEntries(path) {
    return this.request('readDirEntries', { path });
  }

  stat(path, { noFollow = false } = {}) {
    return this.request('stat', { path, noFollow });
  }

  mkdir(path, { recursive = false, mode } = {}) {
    return this.request('mkdir', clean({ path, recursive, mode }));
  }

  remove(path, { recursive = false } = {}) {
    return this.request('remove', { path, recursive });
  }

  rename(from, to) {
    return this.request('rename', { from, to });
  }

  /** Ends the connection (a spawned server then exits) and waits for the stream to close. */
  async close() {
    this.writable.end();
    await this.closed;
    if (this.exited) return this.exited;
    return undefined;
  }
}

function clean(object) {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

function resolveAttachments(value, attachments) {
  if (attachments.length === 0 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => resolveAttachments(item, attachments));
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === 'attachment' && Number.isInteger(value.attachment)) {
    return attachments[value.attachment];
  }
  return Object.fromEntries(keys.map((key) => [key, resolveAttachments(value[key], attachments)]));
}
