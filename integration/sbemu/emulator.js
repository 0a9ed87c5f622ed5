'use strict';
// sbemu: a test-grade Azure Service Bus emulator (AMQP 1.0 on loopback), written on rhea, for
// the unmodified azservicebus Go SDK. Wire contract: shared/docs/servicebus-emulator.md.
// Started by the Go helper in this directory.
//
// Usage: node emulator.js [--host 127.0.0.1] [--port 0] [--control-port 0]
//                         [--key-name NAME] [--key KEY] [--tier standard|premium]
//                         [--tls-cert FILE --tls-key FILE [--tls-host 127.0.0.1] [--amqps-port 0] [--wss-port 0]]
// On start it prints one JSON line to stdout: {"ready":true,"amqpPort":N,"controlPort":M}, plus
// "amqpsPort" and "wssPort" with --tls-cert.
// The control endpoint (HTTP on loopback) creates queues and injects faults; see ROUTES below.
//
// Listeners, as Service Bus has them: plain AMQP on --port always (the development-emulator
// form of the connection string); with --tls-cert and --tls-key (PEM files, a certificate for
// the namespace host name) also AMQPS (AMQP over TLS, Azure's 5671) on --amqps-port, and AMQP
// over WebSockets over TLS (Azure's 443) on --wss-port, both on --tls-host (default --host), at exactly the path
// /$servicebus/websocket with the subprotocol "amqp" (or its draft name "AMQPWSB10", which
// Microsoft's other SDKs send): another path is answered 404, an upgrade
// without the subprotocol 400, a plain request to the path 426. Fault injection (drop
// connections, stop and start the listener) applies to every listener.
//
// Message size, as Service Bus does it: the namespace tier (--tier, default standard) caps a
// message. Standard: 256 KB. Premium: the entity's MaxMessageSizeInKilobytes (1024 KB by
// default, 1024..102400 KB). The cap is the encoded AMQP message (what go-amqp measures). It is
// advertised as max-message-size on the attach of every client sender link (the SDK then
// refuses a larger message itself, with amqp:link:message-size-exceeded, which azservicebus
// returns as ErrMessageTooLarge), and enforced again on receipt: a larger delivery is rejected
// with that condition (a client that ignores the attach, or a limit lowered while the link is
// up). Like Service Bus, the emulator offers max-frame-size 65536, so large messages arrive as
// multi-frame transfers.

const fs = require('fs');
const http = require('http');
const https = require('https');
const crypto = require('crypto');
const rhea = require('rhea');
const { WebSocketServer } = require('ws');
const linkmod = require('rhea/lib/link.js');

const types = rhea.types;
const amqpMessage = rhea.message;

// ---------------------------------------------------------------------------------------------
// rhea adjustments: keep the raw bytes of every decoded message (so stored messages are
// re-sent byte-exact, sections spliced), and allow holding a link's attach reply (accept-next
// session waits for a session to become free).
const origDecode = amqpMessage.decode;
amqpMessage.decode = function (buf) {
  const m = origDecode(buf);
  Object.defineProperty(m, '_raw', { value: Buffer.from(buf), enumerable: false });
  return m;
};
const linkBase = Object.getPrototypeOf(linkmod.Sender.prototype);
const origLinkProcess = linkBase._process;
linkBase._process = function () {
  if (this._sbHold) return;
  return origLinkProcess.call(this);
};

// ---------------------------------------------------------------------------------------------
// options
function parseArgs(argv) {
  const o = { host: '127.0.0.1', port: 0, controlPort: 0, keyName: 'RootManageSharedAccessKey', key: 'eA==', tier: 'standard',
    tlsCert: '', tlsKey: '', tlsHost: '', amqpsPort: 0, wssPort: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    switch (a) {
      case '--host': o.host = v; i++; break;
      case '--port': o.port = Number(v); i++; break;
      case '--control-port': o.controlPort = Number(v); i++; break;
      case '--key-name': o.keyName = v; i++; break;
      case '--key': o.key = v; i++; break;
      case '--tier': o.tier = v; i++; break;
      case '--tls-cert': o.tlsCert = v; i++; break;
      case '--tls-key': o.tlsKey = v; i++; break;
      case '--tls-host': o.tlsHost = v; i++; break;
      case '--amqps-port': o.amqpsPort = Number(v); i++; break;
      case '--wss-port': o.wssPort = Number(v); i++; break;
      default: throw new Error('unknown argument ' + a);
    }
  }
  if (o.tier !== 'standard' && o.tier !== 'premium') throw new Error('--tier must be standard or premium, not ' + o.tier);
  if (!o.tlsCert !== !o.tlsKey) throw new Error('--tls-cert and --tls-key go together');
  return o;
}
const opts = parseArgs(process.argv.slice(2));

// ---------------------------------------------------------------------------------------------
// message size limits (Service Bus quotas)
const KB = 1024;
const STANDARD_MAX_MESSAGE_BYTES = 256 * KB;
const PREMIUM_DEFAULT_MAX_MESSAGE_KB = 1024;
const PREMIUM_MIN_MAX_MESSAGE_KB = 1024;
const PREMIUM_MAX_MAX_MESSAGE_KB = 102400;
const MAX_FRAME_SIZE = 65536;
// Bodies larger than this are left out of control-endpoint snapshots (their size is reported):
// a snapshot is polled often, and megabytes of base64 per poll stall both sides.
const SNAPSHOT_BODY_MAX = 256 * KB;

// a bad control request (answered 400)
class BadRequest extends Error {}

// maxMessageBytes resolves an entity's message size cap from its maxMessageSizeInKilobytes
// option, as Service Bus validates it for the namespace tier.
function maxMessageBytes(kb) {
  if (kb === undefined || kb === null || kb === 0) {
    return opts.tier === 'premium' ? PREMIUM_DEFAULT_MAX_MESSAGE_KB * KB : STANDARD_MAX_MESSAGE_BYTES;
  }
  if (opts.tier !== 'premium') {
    throw new BadRequest('maxMessageSizeInKilobytes can only be set on a premium namespace; standard allows 256 KB');
  }
  if (!Number.isInteger(kb) || kb < PREMIUM_MIN_MAX_MESSAGE_KB || kb > PREMIUM_MAX_MAX_MESSAGE_KB) {
    throw new BadRequest('maxMessageSizeInKilobytes must be an integer from ' + PREMIUM_MIN_MAX_MESSAGE_KB + ' to ' + PREMIUM_MAX_MAX_MESSAGE_KB);
  }
  return kb * KB;
}

function log(...args) {
  if (process.env.SBEMU_DEBUG) console.error('[sbemu]', ...args);
}

// ---------------------------------------------------------------------------------------------
// helpers
const SESSION_FILTER = 'com.microsoft:session-filter';
const SESSION_FILTER_CODE = 0x137000000C;
const DOTNET_EPOCH_MS = 62135596800000; // 0001-01-01 to 1970-01-01

function plain(v) {
  // unwrap rhea Typed / described values down to a JS value
  let guard = 0;
  while (v !== null && v !== undefined && typeof v === 'object' && !Buffer.isBuffer(v) &&
         !Array.isArray(v) && v.type !== undefined && 'value' in v && guard++ < 8) {
    v = v.value;
  }
  return v;
}

function int32(n) { return types.wrap_int(n); }

function longTyped(n) {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(n));
  return types.wrap_long(b);
}

function ticks(ms) { return longTyped((BigInt(ms) + BigInt(DOTNET_EPOCH_MS)) * 10000n); }

// A lock token is a canonical uuid (16 bytes, RFC order); the delivery tag carries it in .NET
// GUID byte order, which the SDK swaps back.
function newToken() { return crypto.randomBytes(16); }
function tokenKey(buf) { return Buffer.from(buf).toString('hex'); }
function tokenToTag(tok) {
  const t = Buffer.from(tok);
  [t[0], t[3]] = [t[3], t[0]];
  [t[1], t[2]] = [t[2], t[1]];
  [t[4], t[5]] = [t[5], t[4]];
  [t[6], t[7]] = [t[7], t[6]];
  return t;
}

function sectionCode(s) {
  const d = s.descriptor ? plain(s.descriptor) : undefined;
  if (typeof d === 'number') return d;
  const names = {
    'amqp:header:list': 0x70, 'amqp:delivery-annotations:map': 0x71, 'amqp:message-annotations:map': 0x72,
    'amqp:properties:list': 0x73, 'amqp:application-properties:map': 0x74, 'amqp:data:binary': 0x75,
    'amqp:amqp-sequence:list': 0x76, 'amqp:amqp-value:*': 0x77, 'amqp:footer:map': 0x78,
  };
  return names[d] || -1;
}

function splitSections(raw) {
  const r = new types.Reader(raw);
  const out = [];
  while (r.remaining()) {
    const start = r.position;
    const s = r.read();
    out.push({ code: sectionCode(s), raw: raw.slice(start, r.position), typed: s });
  }
  return out;
}

// merge a map section (typed items, flat key/value) with overrides {key: Typed}
function mergeMapSection(code, original, overrides, symbolicKeys) {
  const items = [];
  const skip = new Set(Object.keys(overrides));
  if (original) {
    const vals = original.typed.value || [];
    for (let i = 0; i + 1 < vals.length; i += 2) {
      const k = plain(vals[i]);
      if (!skip.has(String(k))) { items.push(vals[i], vals[i + 1]); }
    }
  }
  for (const k of Object.keys(overrides)) {
    items.push(symbolicKeys ? types.wrap_symbol(k) : types.wrap_string(k), overrides[k]);
  }
  return types.described_nc(types.wrap_ulong(code), types.Map32(items));
}

function writeTyped(t) {
  const w = new types.Writer();
  w.write(t);
  return w.toBuffer();
}

// ---------------------------------------------------------------------------------------------
// entities
let seqCounter = 0;
const queues = new Map(); // name -> Queue

class Queue {
  constructor(name, o, isDLQ, parent) {
    this.name = name;
    this.isDLQ = !!isDLQ;
    this.lockDurationMs = o.lockDurationMs || 60000;
    this.maxDeliveryCount = isDLQ ? 0 : (o.maxDeliveryCount === undefined ? 10 : o.maxDeliveryCount);
    this.defaultTtlMs = o.defaultTtlMs || 0; // 0 = no expiry
    this.deadLetterOnExpiry = isDLQ ? false : o.deadLetterOnExpiry !== false;
    this.requiresSession = isDLQ ? false : !!o.requiresSession;
    this.duplicateWindowMs = isDLQ ? 0 : (o.duplicateDetectionWindowMs || 0);
    this.maxMessageSizeBytes = parent ? parent.maxMessageSizeBytes : maxMessageBytes(o.maxMessageSizeInKilobytes);
    this.available = []; // entries, in sequence order
    this.locked = new Map(); // tokenKey -> entry
    this.deferred = new Map(); // seq -> entry set aside by defer, received by sequence number
    this.scheduled = new Map(); // seq -> entry waiting for its scheduled enqueue time
    this.seenIds = new Map(); // message id -> time
    this.sessions = new Map(); // sid -> {id, owner: link|null, lockedUntil}
    this.consumers = new Set(); // sender links (client receivers)
    this.waiting = []; // held accept-next links
    this.dlq = isDLQ ? null : new Queue(name + '/$DeadLetterQueue', {}, true, this);
    this.refuseSends = false; // fault: every transfer rejected, as a send-disabled entity does
    this.stats = { enqueued: 0, completed: 0, deadLettered: 0, duplicates: 0, expired: 0, tooLarge: 0, refused: 0 };
  }
  describe() {
    return {
      name: this.name, lockDurationMs: this.lockDurationMs, maxDeliveryCount: this.maxDeliveryCount,
      defaultTtlMs: this.defaultTtlMs, requiresSession: this.requiresSession,
      duplicateDetectionWindowMs: this.duplicateWindowMs,
      tier: opts.tier, maxMessageSizeBytes: this.maxMessageSizeBytes,
      active: this.available.length, locked: this.locked.size, deferred: this.deferred.size,
      scheduled: this.scheduled.size,
      waiting: this.waiting.length, consumers: this.consumers.size,
      deadLettered: this.dlq ? this.dlq.available.length + this.dlq.locked.size : 0,
      refuseSends: this.refuseSends,
      stats: this.stats,
    };
  }
}

function createQueue(name, o) {
  if (queues.has(name)) {
    return queues.get(name);
  }
  const q = new Queue(name, o || {});
  queues.set(name, q);
  return q;
}

// resolve "<queue>" or "<queue>/$DeadLetterQueue" (case-insensitive sub-queue)
function resolveEntity(address) {
  if (!address) return null;
  let a = String(address);
  const m = a.match(/^(?:amqps?:\/\/[^/]+\/)?(.*)$/);
  if (m) a = m[1];
  const dl = a.match(/^(.*)\/\$deadletterqueue$/i);
  if (dl) {
    const q = queues.get(dl[1]);
    return q ? q.dlq : null;
  }
  return queues.get(a) || null;
}

function entryFromMessage(msg, q) {
  const now = Date.now();
  const raw = msg._raw;
  const sections = splitSections(raw);
  let ttl = msg.ttl || 0;
  if (q.defaultTtlMs && (!ttl || ttl > q.defaultTtlMs)) ttl = q.defaultTtlMs;
  return {
    seq: ++seqCounter,
    sections,
    messageId: msg.message_id === undefined || msg.message_id === null ? null :
      (Buffer.isBuffer(msg.message_id) ? msg.message_id.toString('hex') : String(msg.message_id)),
    sessionId: msg.group_id === undefined || msg.group_id === null ? null : String(msg.group_id),
    enqueuedAt: now,
    expiresAt: ttl ? now + ttl : 0,
    ttl,
    deliveryCount: 0,
    lockToken: null,
    lockedUntil: 0,
    lockTimer: null,
    owner: null, // sender link holding the lock
    extraAppProps: {}, // DeadLetterReason etc.
    extraAnnotations: {},
  };
}

// lockToken, when given, goes in the delivery annotation x-opt-lock-token (a message handed
// over in a $management reply has no delivery tag to carry it).
function encodeEntry(e, q, lockToken) {
  const parts = [];
  const header = { durable: true, delivery_count: Math.max(0, e.deliveryCount - 1) };
  if (e.ttl) header.ttl = e.ttl;
  parts.push(writeTyped(amqpMessage.header(header).described()));
  if (lockToken) parts.push(writeTyped(mergeMapSection(0x71, null, { 'x-opt-lock-token': types.wrap_uuid(lockToken) }, true)));
  const ann = {
    'x-opt-enqueued-time': types.wrap_timestamp(e.enqueuedAt),
    'x-opt-sequence-number': longTyped(e.seq),
    'x-opt-locked-until': types.wrap_timestamp(e.lockedUntil || e.enqueuedAt),
  };
  if (e.deferred) ann['x-opt-message-state'] = longTyped(1); // 0 active, 1 deferred, 2 scheduled
  if (e.scheduleTimer) ann['x-opt-message-state'] = longTyped(2);
  if (e.sessionId !== null) ann['x-opt-session-id'] = types.wrap_string(e.sessionId);
  for (const k of Object.keys(e.extraAnnotations)) ann[k] = e.extraAnnotations[k];
  const byCode = {};
  for (const s of e.sections) byCode[s.code] = s;
  parts.push(writeTyped(mergeMapSection(0x72, byCode[0x72], ann, true)));
  if (byCode[0x73]) parts.push(byCode[0x73].raw);
  if (byCode[0x74] || Object.keys(e.extraAppProps).length) {
    if (Object.keys(e.extraAppProps).length) {
      parts.push(writeTyped(mergeMapSection(0x74, byCode[0x74], e.extraAppProps, false)));
    } else {
      parts.push(byCode[0x74].raw);
    }
  }
  for (const s of e.sections) {
    if (s.code >= 0x75 && s.code <= 0x78) parts.push(s.raw);
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// queue operations

// enqueueAt enqueues a received message now or, when it carries a future
// x-opt-scheduled-enqueue-time, holds it until then (a scheduled message: peek shows it with
// x-opt-message-state 2; its enqueued time is the time it becomes active).
function enqueueAt(q, e, msg) {
  const at = scheduledTime(msg);
  if (!(at > Date.now())) { enqueue(q, e); return; }
  q.scheduled.set(e.seq, e);
  e.enqueuedAt = at;
  if (e.ttl) e.expiresAt = at + e.ttl;
  e.scheduleTimer = setTimeout(() => {
    e.scheduleTimer = null;
    if (q.scheduled.delete(e.seq)) enqueue(q, e);
  }, at - Date.now());
}

function scheduledTime(msg) {
  const v = plain((msg.message_annotations || {})['x-opt-scheduled-enqueue-time']);
  if (v === undefined || v === null) return 0;
  return v instanceof Date ? v.getTime() : Number(v);
}

function enqueue(q, e) {
  q.available.push(e);
  q.stats.enqueued++;
  pumpQueue(q);
}

function returnToQueue(q, e, countAttempt) {
  clearLock(q, e);
  if (!countAttempt) e.deliveryCount = Math.max(0, e.deliveryCount - 1);
  if (q.maxDeliveryCount > 0 && e.deliveryCount >= q.maxDeliveryCount) {
    deadLetter(q, e, 'MaxDeliveryCountExceeded',
      'Message could not be consumed after ' + q.maxDeliveryCount + ' delivery attempts.');
    return;
  }
  if (e.deferred) { q.deferred.set(e.seq, e); return; } // a deferred message stays deferred
  // keep sequence order
  let i = q.available.length;
  while (i > 0 && q.available[i - 1].seq > e.seq) i--;
  q.available.splice(i, 0, e);
  pumpQueue(q);
}

function clearLock(q, e) {
  if (e.lockTimer) clearTimeout(e.lockTimer);
  e.lockTimer = null;
  if (e.lockToken) q.locked.delete(tokenKey(e.lockToken));
  e.lockToken = null;
  e.owner = null;
}

function deadLetter(q, e, reason, description) {
  clearLock(q, e);
  q.stats.deadLettered++;
  if (!q.dlq) return; // dead-lettering from a DLQ drops the message
  e.extraAppProps.DeadLetterReason = types.wrap_string(String(reason || ''));
  e.extraAppProps.DeadLetterErrorDescription = types.wrap_string(String(description || ''));
  e.extraAnnotations['x-opt-deadletter-source'] = types.wrap_string(q.name);
  e.deferred = false;
  e.deliveryCount = 0;
  e.expiresAt = 0;
  e.sessionId = e.sessionId; // DLQ is not session-aware; id kept for inspection
  enqueue(q.dlq, e);
}

function expireMessages(q) {
  const now = Date.now();
  const keep = [];
  for (const e of q.available) {
    if (e.expiresAt && e.expiresAt <= now) {
      q.stats.expired++;
      if (q.deadLetterOnExpiry) deadLetter(q, e, 'TTLExpiredException', 'The message expired and was dead lettered.');
    } else {
      keep.push(e);
    }
  }
  q.available = keep;
}

function lockExpired(q, e, token) {
  if (e.lockToken && e.lockToken.equals(token)) {
    log('lock expired', q.name, e.seq);
    returnToQueue(q, e, true);
  }
}

function settleEntry(q, e, outcome, info) {
  switch (outcome) {
    case 'complete':
      clearLock(q, e);
      q.stats.completed++;
      break;
    case 'abandon':
      returnToQueue(q, e, true);
      break;
    case 'release':
      returnToQueue(q, e, false);
      break;
    case 'deadletter':
      deadLetter(q, e, info && info.reason, info && info.description);
      break;
    case 'defer':
      // set aside: only receive-by-sequence-number (or peek) reaches it again
      clearLock(q, e);
      e.deferred = true;
      q.deferred.set(e.seq, e);
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// delivering
function linkCredit(link) {
  const sb = link._sb;
  const out = link.session.outgoing;
  sb.pending = sb.pending.filter((id) => id >= out.next_pending_delivery);
  return link.credit - sb.pending.length;
}

function pumpQueue(q) {
  expireMessages(q);
  assignWaiting(q);
  for (const link of q.consumers) pumpLink(link);
}

// lockEntry locks a message for owner (a client receiver link; null for a lock taken through
// $management) for the queue's lock duration and returns the new lock token.
function lockEntry(q, e, owner) {
  const token = newToken();
  e.lockToken = token;
  e.owner = owner;
  e.lockedUntil = Date.now() + q.lockDurationMs;
  q.locked.set(tokenKey(token), e);
  e.lockTimer = setTimeout(() => lockExpired(q, e, token), q.lockDurationMs);
  return token;
}

function pumpLink(link) {
  const sb = link._sb;
  if (!sb || sb.closed || !link.is_open()) return;
  const q = sb.queue;
  expireMessages(q);
  let sent = false;
  while (linkCredit(link) > 0 && link.session.outgoing.available() > 0) {
    const idx = q.available.findIndex((e) => (q.requiresSession ? e.sessionId === sb.sessionId : true));
    if (idx < 0) break;
    const e = q.available.splice(idx, 1)[0];
    e.deliveryCount++;
    if (link.local.attach.snd_settle_mode === 1) {
      // receive-and-delete (the client asked for settled transfers): rhea sends the transfer
      // settled and the message is gone, as Service Bus removes it when it hands it over
      const d = link.send(encodeEntry(e, q), tokenToTag(newToken()), 0);
      sb.pending.push(d.id);
      q.stats.completed++;
      sent = true;
      continue;
    }
    const token = lockEntry(q, e, link);
    const d = link.send(encodeEntry(e, q), tokenToTag(token), 0);
    d._sb = { queue: q, token };
    sb.pending.push(d.id);
    sent = true;
  }
  if (!sent && link._draining && link.credit > 0) {
    link.set_drained(true);
    link.connection._register();
  }
}

function lookupLocked(q, token) {
  const e = q.locked.get(tokenKey(token));
  if (!e || !e.lockToken || !e.lockToken.equals(token)) return null;
  // a lock past its time is lost even if its timer has not fired yet (a busy event loop runs
  // timers late); Service Bus checks the lock's expiry when the settlement arrives
  if (e.lockedUntil <= Date.now()) { lockExpired(q, e, token); return null; }
  return e;
}

function lockLostError() {
  return { condition: 'com.microsoft:message-lock-lost', description: 'The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.' };
}

function onDisposition(context, outcome) {
  const d = context.delivery;
  if (!d._sb || d._sbDone) return;
  d._sbDone = true;
  const { queue: q, token } = d._sb;
  const e = lookupLocked(q, token);
  if (!e || e.owner !== context.sender) {
    d.update(true, amqpMessage.rejected({ error: lockLostError() }).described());
    d.remote_settled = true;
    return;
  }
  const state = d.remote_state;
  let reply = state;
  if (outcome === 'accepted') {
    settleEntry(q, e, 'complete');
    reply = amqpMessage.accepted().described();
  } else if (outcome === 'released') {
    settleEntry(q, e, 'release');
    reply = amqpMessage.released().described();
  } else if (outcome === 'modified') {
    const undeliverable = state && state.undeliverable_here;
    modifyProperties(e, state && state.value && state.value[2]); // message-annotations
    settleEntry(q, e, undeliverable ? 'defer' : 'abandon');
    reply = amqpMessage.modified({ delivery_failed: !!(state && state.delivery_failed), undeliverable_here: !!undeliverable }).described();
  } else if (outcome === 'rejected') {
    const err = state && state.error;
    const info = err && err.info ? plainMap(err.info) : {};
    modifyProperties(e, state.value && state.value[0] && state.value[0].value && state.value[0].value[2]); // error info
    settleEntry(q, e, 'deadletter', { reason: info.DeadLetterReason, description: info.DeadLetterErrorDescription });
    // Service Bus settles a dead-lettered delivery with Rejected carrying no error (echoing
    // the client's error would make the SDKs report the dead-letter condition as a failure;
    // no outcome at all makes rhea, under the JavaScript SDK, log "unrecognised outcome")
    reply = amqpMessage.rejected({}).described();
  }
  d.update(true, reply);
  d.remote_settled = true; // the SDK does not send a final settled disposition in mode second
}

// Service Bus merges a settlement's properties-to-modify into the message's application
// properties: the modified outcome's message-annotations (abandon, defer), the rejected
// outcome's error info (dead-letter, which also carries DeadLetterReason and
// DeadLetterErrorDescription), update-disposition's properties-to-modify. typedMap is the map
// as rhea read it off the wire, so the values keep their AMQP types.
function modifyProperties(e, typedMap) {
  const items = typedMap && Array.isArray(typedMap.value) ? typedMap.value : [];
  for (let i = 0; i + 1 < items.length; i += 2) e.extraAppProps[String(plain(items[i]))] = items[i + 1];
}

// typedBodyValue is the value of key in a request's amqp-value map body with its AMQP type
// (rhea's decoded body has plain JavaScript values).
function typedBodyValue(req, key) {
  const s = req._raw ? splitSections(req._raw).find((x) => x.code === 0x77) : null;
  const items = s && Array.isArray(s.typed.value) ? s.typed.value : [];
  for (let i = 0; i + 1 < items.length; i += 2) if (plain(items[i]) === key) return items[i + 1];
  return undefined;
}

function plainMap(m) {
  if (!m) return {};
  if (m.value && Array.isArray(m.value)) {
    const out = {};
    for (let i = 0; i + 1 < m.value.length; i += 2) out[String(plain(m.value[i]))] = plain(m.value[i + 1]);
    return out;
  }
  const out = {};
  for (const k of Object.keys(m)) out[k] = plain(m[k]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// sessions
function sessionLockMs(q) { return q.lockDurationMs; }

function sessionsWithMessages(q) {
  const ids = [];
  for (const e of q.available) {
    if (e.sessionId !== null && !ids.includes(e.sessionId)) ids.push(e.sessionId);
  }
  return ids;
}

function sessionFree(q, sid) {
  const s = q.sessions.get(sid);
  if (!s || !s.owner) return true;
  if (s.lockedUntil <= Date.now()) { releaseSession(q, s); return true; }
  return false;
}

function releaseSession(q, s) {
  if (s.timer) clearTimeout(s.timer);
  s.timer = null;
  s.owner = null;
}

function lockSession(q, sid, link) {
  let s = q.sessions.get(sid);
  if (!s) { s = { id: sid, owner: null, lockedUntil: 0, timer: null }; q.sessions.set(sid, s); }
  s.owner = link;
  renewSession(q, s);
  return s;
}

function renewSession(q, s) {
  s.lockedUntil = Date.now() + sessionLockMs(q);
  if (s.timer) clearTimeout(s.timer);
  s.timer = setTimeout(() => {
    if (s.owner && s.lockedUntil <= Date.now()) {
      const link = s.owner;
      releaseSession(q, s);
      if (link.is_open()) link.close({ condition: 'com.microsoft:session-lock-lost', description: 'The session lock has expired.' });
    }
  }, sessionLockMs(q) + 5);
}

// The granted session id is echoed in the session filter in the form the client sent it:
// described (0x137000000C) to a client that sent a described filter (the Go SDK), a plain
// string to one that sent a plain value (the JavaScript SDK, which compares the echoed value
// with the id it asked for as a string).
function grantSession(link, q, sid) {
  const s = lockSession(q, sid, link);
  link._sb.sessionId = sid;
  const asked = ((link.source || {}).filter || {})[SESSION_FILTER];
  const described = asked !== null && typeof asked === 'object' && asked.descriptor !== undefined;
  link.set_source({
    address: link._sb.address,
    filter: { [SESSION_FILTER]: described ? types.described(types.wrap_ulong(SESSION_FILTER_CODE), types.wrap_string(sid)) : types.wrap_string(sid) },
  });
  link.local.attach.properties = { 'com.microsoft:locked-until-utc': ticks(s.lockedUntil) };
}

function assignWaiting(q) {
  while (q.waiting.length) {
    const free = sessionsWithMessages(q).filter((sid) => sessionFree(q, sid));
    if (!free.length) return;
    const w = q.waiting.shift();
    clearTimeout(w.timer);
    if (!w.link.connection.is_open() || w.link._sb.closed) continue;
    grantSession(w.link, q, free[0]);
    w.link._sbHold = false;
    q.consumers.add(w.link);
    w.link.connection._register();
  }
}

// ---------------------------------------------------------------------------------------------
// CBS and $management
const authorized = new WeakMap(); // connection -> Map(put-token name -> grant)

function verifySas(token) {
  if (typeof token !== 'string' || !token.startsWith('SharedAccessSignature ')) return 'malformed token';
  const fields = {};
  for (const kv of token.slice('SharedAccessSignature '.length).split('&')) {
    const i = kv.indexOf('=');
    if (i > 0) fields[kv.slice(0, i)] = kv.slice(i + 1);
  }
  if (!fields.sr || !fields.sig || !fields.se || !fields.skn) return 'malformed token';
  if (fields.skn !== opts.keyName) return 'unknown key name';
  if (Number(fields.se) * 1000 < Date.now()) return 'token expired';
  const expect = crypto.createHmac('sha256', Buffer.from(opts.key, 'utf8')).update(fields.sr + '\n' + fields.se).digest('base64');
  let got;
  try { got = decodeURIComponent(fields.sig); } catch (err) { return 'malformed signature'; }
  const a = Buffer.from(expect);
  const b = Buffer.from(got);
  if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) return 'invalid signature';
  return null;
}

// Entra ID tokens (CBS put-token type jwt), checked as Service Bus checks them: an RS256
// signature by a key of the issuer's JWKS, the issuer, the audience, exp and nbf; then, when a
// link opens, the token's roles (see tokenGrants). The Go helper passes the issuer through
// SBEMU_JWKS_FILE, SBEMU_JWT_ISSUER and SBEMU_JWT_AUDIENCE (sbemu.Options.JWT); without them
// every jwt put-token is refused, as a namespace refuses tokens of a tenant it does not trust.
const NBF_SKEW_MS = 5 * 60 * 1000;

function loadEntra() {
  const file = process.env.SBEMU_JWKS_FILE;
  if (!file) return null;
  const jwks = JSON.parse(require('fs').readFileSync(file, 'utf8'));
  const keys = new Map();
  for (const k of jwks.keys || []) {
    if (k.kty !== 'RSA') continue;
    keys.set(k.kid || '', crypto.createPublicKey({ key: { kty: k.kty, n: k.n, e: k.e }, format: 'jwk' }));
  }
  if (!keys.size) throw new Error('sbemu: no RSA key in ' + file);
  return { keys, issuer: process.env.SBEMU_JWT_ISSUER || '', audience: process.env.SBEMU_JWT_AUDIENCE || 'https://servicebus.azure.net' };
}
const entra = loadEntra();

function b64json(part) { return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')); }

// verifyJwt returns {claims} or {problem}; problem texts follow Service Bus's (their first
// word is the error name Service Bus puts in status-description).
function verifyJwt(token) {
  if (!entra) return { problem: 'InvalidIssuer: the namespace trusts no token issuer (sbemu.Options.JWT is unset)' };
  if (typeof token !== 'string' || !token) return { problem: 'MalformedToken: empty token' };
  const parts = token.split('.');
  if (parts.length !== 3) return { problem: 'MalformedToken: the token is not a JWT' };
  let header; let claims;
  try { header = b64json(parts[0]); claims = b64json(parts[1]); } catch (err) { return { problem: 'MalformedToken: the token is not a JWT' }; }
  if (header.alg !== 'RS256') return { problem: 'InvalidSignature: unsupported algorithm ' + header.alg };
  const key = entra.keys.get(header.kid || '') || (entra.keys.size === 1 && !header.kid ? entra.keys.values().next().value : null);
  if (!key) return { problem: 'InvalidSignature: the signing key ' + header.kid + ' is not in the issuer\'s keys' };
  const ok = crypto.verify('RSA-SHA256', Buffer.from(parts[0] + '.' + parts[1]), key, Buffer.from(parts[2], 'base64url'));
  if (!ok) return { problem: 'InvalidSignature: the token signature is invalid' };
  if (claims.iss !== entra.issuer) return { problem: 'InvalidIssuer: Token issuer is invalid. Issuer: \'' + claims.iss + '\'' };
  const auds = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!auds.some((a) => String(a).replace(/\/+$/, '') === entra.audience)) return { problem: 'InvalidAudience: The audience \'' + claims.aud + '\' is invalid' };
  const now = Date.now();
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= now) return { problem: 'ExpiredToken: The token is expired. Expiration time: \'' + new Date((claims.exp || 0) * 1000).toISOString() + '\'' };
  if (typeof claims.nbf === 'number' && claims.nbf * 1000 > now + NBF_SKEW_MS) return { problem: 'InvalidToken: The token is not valid yet (nbf)' };
  return { claims };
}

// entityOf is the queue a CBS audience or link address concerns ('' for the namespace): the
// path, without a scheme and host, a dead-letter or $management suffix.
function entityOf(address) {
  let a = String(address || '');
  const m = a.match(/^(?:[a-z]+:\/\/[^/]+\/?)?(.*)$/i);
  if (m) a = m[1];
  return a.replace(/\/\$(deadletterqueue|management)$/i, '').replace(/\/+$/, '').toLowerCase();
}

// tokenGrants says whether a token's roles give right ('Listen' or 'Send') on entity:
// 'Manage' or the right namespace-wide, or '<right>:<queue>' for that queue.
function tokenGrants(roles, right, entity) {
  for (const r of Array.isArray(roles) ? roles : []) {
    const s = String(r);
    if (s === 'Manage' || s === right) return true;
    const i = s.indexOf(':');
    if (i > 0 && s.slice(0, i) === right && s.slice(i + 1).toLowerCase() === entity) return true;
  }
  return false;
}

function handleCbs(conn, req) {
  const ap = req.application_properties || {};
  if (ap.operation !== 'put-token') return { code: 400, desc: 'unsupported operation' };
  const name = String(ap.name || '');
  let grant;
  if (ap.type === 'jwt') {
    const v = verifyJwt(typeof req.body === 'string' ? req.body : plain(req.body));
    if (v.problem) return { code: 401, desc: v.problem };
    grant = { kind: 'jwt', roles: v.claims.roles || [], expiresAt: v.claims.exp * 1000, entity: entityOf(name) };
  } else {
    const problem = verifySas(typeof req.body === 'string' ? req.body : plain(req.body));
    if (problem) return { code: 401, desc: 'Unauthorized: ' + problem };
    grant = { kind: 'sas' };
  }
  let m = authorized.get(conn);
  if (!m) { m = new Map(); authorized.set(conn, m); }
  m.set(name, grant);
  return { code: 202, desc: 'Accepted' };
}

// authorizationProblem is why a link for right ('Listen' or 'Send') on address may not open,
// or null: a SAS put-token (the namespace key) allows all; a jwt one for the namespace or the
// entity must carry the right and not have expired.
function authorizationProblem(conn, address, right) {
  const m = authorized.get(conn);
  if (!m || !m.size) return 'Unauthorized access. put-token was not sent or failed.';
  const entity = entityOf(address);
  let covered = false;
  for (const g of m.values()) {
    if (g.kind === 'sas') return null;
    if (g.entity !== '' && g.entity !== entity) continue;
    if (g.expiresAt <= Date.now()) continue;
    covered = true;
    if (tokenGrants(g.roles, right, entity)) return null;
  }
  if (!covered) return 'Unauthorized access. No valid token for ' + address + ' was put on $cbs.';
  return 'Unauthorized access. \'' + right + '\' claim(s) are required to perform this operation. Resource: \'' + address + '\'.';
}

// grantExpiry is when the last token allowing right on address expires (Infinity for SAS,
// 0 for none).
function grantExpiry(conn, address, right) {
  const m = authorized.get(conn);
  if (!m) return 0;
  const entity = entityOf(address);
  let until = 0;
  for (const g of m.values()) {
    if (g.kind === 'sas') return Infinity;
    if ((g.entity === '' || g.entity === entity) && tokenGrants(g.roles, right, entity)) until = Math.max(until, g.expiresAt);
  }
  return until;
}

// watchTokenExpiry force-detaches an open link when the token that let it open expires and no
// newer one was put on $cbs, with the condition and text Service Bus uses (Code: RenewToken).
function watchTokenExpiry(link, conn, address, right) {
  const until = grantExpiry(conn, address, right);
  if (until === Infinity || until === 0) return;
  setTimeout(() => {
    if (link.is_closed() || !conn.is_open()) return;
    if (grantExpiry(conn, address, right) > Date.now()) { watchTokenExpiry(link, conn, address, right); return; }
    log('token expired, detaching', address);
    if (link._sb) onConsumerGone(link);
    link.close({ condition: 'amqp:link:detach-forced', description: 'The link \'' + link.name + '\' is force detached. Code: RenewToken. Details: Unauthorized access. \'' + right + '\' claim(s) are required to perform this operation. Resource: \'' + address + '\'.' });
  }, Math.max(0, until - Date.now()) + 5).unref();
}

function handleManagement(q, req) {
  const ap = req.application_properties || {};
  const body = req.body && typeof req.body === 'object' && !Buffer.isBuffer(req.body) ? plainMap(req.body) : {};
  const op = ap.operation;
  const now = Date.now();
  switch (op) {
    case 'com.microsoft:renew-lock': {
      const tokens = (body['lock-tokens'] || []).map((t) => Buffer.from(plain(t)));
      const exps = [];
      for (const t of tokens) {
        const e = lookupLocked(q, t);
        if (!e) return { code: 410, desc: 'The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.', condition: 'com.microsoft:message-lock-lost' };
        e.lockedUntil = now + q.lockDurationMs;
        clearTimeout(e.lockTimer);
        e.lockTimer = setTimeout(() => lockExpired(q, e, t), q.lockDurationMs);
        exps.push(e.lockedUntil);
      }
      return { code: 200, body: { expirations: types.wrap_array(exps, 0x83) } };
    }
    case 'com.microsoft:renew-session-lock': {
      const sid = String(body['session-id']);
      const s = q.sessions.get(sid);
      if (!s || !s.owner || s.lockedUntil <= now) return { code: 410, desc: 'The session lock was lost.', condition: 'com.microsoft:session-lock-lost' };
      renewSession(q, s);
      return { code: 200, body: { expiration: types.wrap_timestamp(s.lockedUntil) } };
    }
    case 'com.microsoft:update-disposition': {
      const status = String(body['disposition-status']);
      const tokens = (body['lock-tokens'] || []).map((t) => Buffer.from(plain(t)));
      for (const t of tokens) {
        const e = lookupLocked(q, t);
        if (!e) return { code: 410, desc: 'The lock supplied is invalid.', condition: 'com.microsoft:message-lock-lost' };
        if (status !== 'completed') modifyProperties(e, typedBodyValue(req, 'properties-to-modify'));
        if (status === 'completed') settleEntry(q, e, 'complete');
        else if (status === 'abandoned') settleEntry(q, e, 'abandon');
        else if (status === 'suspended') settleEntry(q, e, 'deadletter', { reason: body['deadletter-reason'], description: body['deadletter-description'] });
        else if (status === 'defered' || status === 'deferred') settleEntry(q, e, 'defer');
        else return { code: 400, desc: 'unknown disposition-status ' + status };
      }
      return { code: 200, body: {} };
    }
    case 'com.microsoft:get-session-state': {
      const s = q.sessions.get(String(body['session-id']));
      return { code: 200, body: { 'session-state': s && s.state ? types.wrap_binary(s.state) : null } };
    }
    case 'com.microsoft:set-session-state': {
      const sid = String(body['session-id']);
      let s = q.sessions.get(sid);
      if (!s) { s = { id: sid, owner: null, lockedUntil: 0, timer: null }; q.sessions.set(sid, s); }
      s.state = body['session-state'] ? Buffer.from(body['session-state']) : null;
      return { code: 200, body: {} };
    }
    case 'com.microsoft:peek-message': {
      const from = Number(body['from-sequence-number'] || 0);
      const count = Number(body['message-count'] || 1);
      // a session receiver's peek (session-id set) sees only its session's messages
      const sid = body['session-id'];
      const inScope = (e) => e.seq >= from && (sid === undefined || sid === null || e.sessionId === String(sid));
      const all = q.available.concat(Array.from(q.locked.values()), Array.from(q.deferred.values()), Array.from(q.scheduled.values())).filter(inScope).sort((a, b) => a.seq - b.seq).slice(0, count);
      if (!all.length) return { code: 204, desc: 'No messages' };
      const msgs = all.map((e) => types.wrap_map({ message: types.wrap_binary(encodeEntry(e, q)) }));
      return { code: 200, body: { messages: types.wrap_list(msgs) } };
    }
    case 'com.microsoft:schedule-message': {
      // messages: [{message: encoded message, message-id, session-id?}]; each is held until
      // its x-opt-scheduled-enqueue-time and gets its sequence number now
      const items = [].concat(body.messages || []).map(plainMap);
      let msgs;
      try { msgs = items.map((it) => amqpMessage.decode(Buffer.from(it.message))); } catch (err) {
        return { code: 400, desc: 'Malformed message to schedule: ' + err.message, condition: 'amqp:decode-error' };
      }
      if (!msgs.length) return { code: 400, desc: 'No messages to schedule.' };
      const seqs = msgs.map((m) => { const e = entryFromMessage(m, q); enqueueAt(q, e, m); return e.seq; });
      return { code: 200, body: { 'sequence-numbers': types.wrap_array(seqs, 0x81) } };
    }
    case 'com.microsoft:cancel-scheduled-message': {
      for (const n of [].concat(body['sequence-numbers'] || []).map((v) => Number(plain(v)))) {
        const e = q.scheduled.get(n);
        if (!e) continue; // already enqueued or cancelled: nothing to do, as Service Bus
        clearTimeout(e.scheduleTimer);
        q.scheduled.delete(n);
      }
      return { code: 200, body: {} };
    }
    case 'com.microsoft:receive-by-sequence-number': {
      // deferred messages only; receiver-settle-mode 1 locks them (peek-lock), 0 removes them
      const seqs = [].concat(body['sequence-numbers'] || []).map((n) => Number(plain(n)));
      const peekLock = Number(body['receiver-settle-mode'] || 0) === 1;
      const sid = body['session-id'];
      const found = seqs.map((n) => q.deferred.get(n));
      if (!seqs.length || found.some((e) => !e || (sid !== undefined && sid !== null && e.sessionId !== String(sid)))) {
        return { code: 404, desc: 'Failed to lock one or more specified messages. Either the message is not deferred or it does not exist.', condition: 'com.microsoft:message-not-found' };
      }
      const msgs = found.map((e) => {
        q.deferred.delete(e.seq);
        e.deliveryCount++;
        if (!peekLock) {
          q.stats.completed++;
          return types.wrap_map({ message: types.wrap_binary(encodeEntry(e, q)) });
        }
        const token = lockEntry(q, e, null);
        return types.wrap_map({ message: types.wrap_binary(encodeEntry(e, q, token)), 'lock-token': types.wrap_uuid(token) });
      });
      return { code: 200, body: { messages: types.wrap_list(msgs) } };
    }
    default:
      return { code: 501, desc: 'operation ' + op + ' is not emulated' };
  }
}

// The reply goes to the client's receiving link named by reply-to: the link whose target
// address is reply-to (the Go SDK), else the link whose name is reply-to (the JavaScript SDK's
// $cbs link has no target address), as Service Bus routes it.
function replyTo(conn, req, result) {
  const target = req.reply_to;
  let out = null;
  conn.each_sender((s) => {
    if (!out && s.target && s.target.address === target && s.is_open()) out = s;
  });
  conn.each_sender((s) => {
    if (!out && s.name === target && s.is_open()) out = s;
  });
  if (!out) { log('no reply link for', target); return; }
  // Service Bus names the status properties statusCode, statusDescription and errorCondition
  // on $management replies, and status-code, status-description, error-condition (the older
  // names) on $cbs replies. The JavaScript SDK reads statusCode on a peek reply to tell 204
  // (no messages, no body) from 200.
  const [codeKey, descKey, condKey] = result.cbs ? ['status-code', 'status-description', 'error-condition'] :
    ['statusCode', 'statusDescription', 'errorCondition'];
  const ap = { [codeKey]: int32(result.code), [descKey]: types.wrap_string(result.desc || '') };
  if (result.condition) ap[condKey] = types.wrap_symbol(result.condition);
  const msg = { correlation_id: req.message_id, application_properties: ap };
  if (result.body) msg.body = types.wrap_map(result.body);
  out.send(msg);
}

// ---------------------------------------------------------------------------------------------
// connections
const linkOptions = { autoaccept: false, treat_modified_as_released: false, autosettle: true };
const container = rhea.create_container({ id: 'sbemu', sender_options: { ...linkOptions }, receiver_options: { ...linkOptions } });
const connections = new Set();

container.on('connection_open', (ctx) => {
  connections.add(ctx.connection);
});
function dropConnection(conn) { connections.delete(conn); }
container.on('connection_close', (ctx) => { dropConnection(ctx.connection); cleanupConnection(ctx.connection); });
container.on('disconnected', (ctx) => { dropConnection(ctx.connection); cleanupConnection(ctx.connection); });
container.on('error', (err) => log('container error', err && err.message));
container.on('connection_error', () => {});
container.on('session_error', () => {});

function cleanupConnection(conn) {
  for (const q of queues.values()) {
    for (const link of Array.from(q.consumers)) {
      if (link.connection === conn) onConsumerGone(link);
    }
    for (const w of q.waiting.slice()) {
      if (w.link.connection === conn) { clearTimeout(w.timer); q.waiting.splice(q.waiting.indexOf(w), 1); }
    }
  }
}

function onConsumerGone(link) {
  const sb = link._sb;
  if (!sb || sb.closed) return;
  sb.closed = true;
  const q = sb.queue;
  q.consumers.delete(link);
  // locks bound to the link become invalid; the messages are available again at once
  for (const e of Array.from(q.locked.values())) {
    if (e.owner === link) returnToQueue(q, e, true);
  }
  if (sb.sessionId !== null && sb.sessionId !== undefined) {
    const s = q.sessions.get(sb.sessionId);
    if (s && s.owner === link) releaseSession(q, s);
    assignWaiting(q);
  }
  pumpQueue(q);
}

function refuse(link, condition, description) {
  // Answer the attach with a null terminus, then detach with the error (AMQP 1.0, 2.6.3).
  if (link.is_sender()) link.local.attach.source = null; else link.local.attach.target = null;
  link._sbHold = false;
  link.close({ condition, description });
}

// client receiver -> our sender
container.on('sender_open', (ctx) => {
  const link = ctx.sender;
  const conn = ctx.connection;
  const src = link.source || {};
  const address = src.address;
  link.local.attach.rcv_settle_mode = link.remote.attach.rcv_settle_mode || 0;
  link.local.attach.snd_settle_mode = link.remote.attach.snd_settle_mode === undefined ? 2 : link.remote.attach.snd_settle_mode;
  link.set_source({ address });
  link.set_target({ address: link.target ? link.target.address : undefined });
  if (address === '$cbs' || (address && /\/\$management$/i.test(address))) {
    return; // reply link of a request/response node
  }
  const denied = authorizationProblem(conn, address, 'Listen');
  if (denied) { refuse(link, 'amqp:unauthorized-access', denied); return; }
  watchTokenExpiry(link, conn, address, 'Listen');
  const q = resolveEntity(address);
  if (!q) { refuse(link, 'amqp:not-found', 'The messaging entity ' + address + ' could not be found.'); return; }
  link._sb = { queue: q, address, pending: [], sessionId: null, closed: false };
  const filters = src.filter || {};
  const hasSessionFilter = Object.prototype.hasOwnProperty.call(filters, SESSION_FILTER);
  if (q.requiresSession && !hasSessionFilter) {
    refuse(link, 'amqp:not-allowed', 'It is not possible for an entity that requires sessions to create a non-sessionful message receiver.');
    return;
  }
  if (hasSessionFilter) {
    const sid = plain(filters[SESSION_FILTER]);
    if (sid !== null && sid !== undefined) {
      if (!sessionFree(q, String(sid))) { refuse(link, 'com.microsoft:session-cannot-be-locked', 'The requested session ' + sid + ' cannot be accepted. It may be locked by another receiver.'); return; }
      grantSession(link, q, String(sid));
    } else {
      const free = sessionsWithMessages(q).filter((s) => sessionFree(q, s));
      if (free.length) {
        grantSession(link, q, free[0]);
      } else {
        const props = plainMap(link.remote.attach.properties || {});
        const timeoutMs = Math.min(Number(props['com.microsoft:timeout'] || 60000), 60000);
        link._sbHold = true;
        const w = { link, timer: null };
        w.timer = setTimeout(() => {
          const i = q.waiting.indexOf(w);
          if (i >= 0) q.waiting.splice(i, 1);
          refuse(link, 'com.microsoft:timeout', 'No session available to accept within the timeout.');
          link.connection._register();
        }, timeoutMs);
        q.waiting.push(w);
        return;
      }
    }
  }
  q.consumers.add(link);
});

container.on('sendable', (ctx) => { if (ctx.sender._sb) pumpLink(ctx.sender); });
container.on('sender_draining', (ctx) => { if (ctx.sender._sb) pumpLink(ctx.sender); });
container.on('sender_close', (ctx) => onConsumerGone(ctx.sender));
container.on('sender_error', () => {});
container.on('accepted', (ctx) => onDisposition(ctx, 'accepted'));
container.on('released', (ctx) => onDisposition(ctx, 'released'));
container.on('modified', (ctx) => onDisposition(ctx, 'modified'));
container.on('rejected', (ctx) => onDisposition(ctx, 'rejected'));
container.on('settled', () => {});

// client sender -> our receiver
container.on('receiver_open', (ctx) => {
  const link = ctx.receiver;
  const address = link.target ? link.target.address : undefined;
  link.local.attach.rcv_settle_mode = link.remote.attach.rcv_settle_mode || 0;
  link.local.attach.snd_settle_mode = link.remote.attach.snd_settle_mode === undefined ? 2 : link.remote.attach.snd_settle_mode;
  link.set_target({ address });
  link.set_source({ address: link.source ? link.source.address : undefined });
  if (address === '$cbs' || (address && /\/\$management$/i.test(address))) return;
  const denied = authorizationProblem(ctx.connection, address, 'Send');
  if (denied) { refuse(link, 'amqp:unauthorized-access', denied); return; }
  watchTokenExpiry(link, ctx.connection, address, 'Send');
  const q = resolveEntity(address);
  if (!q || q.isDLQ) { refuse(link, 'amqp:not-found', 'The messaging entity ' + address + ' could not be found.'); return; }
  link._sbTarget = q;
  // the entity's cap as of now; a later change applies on receipt (see the message handler)
  link.local.attach.max_message_size = q.maxMessageSizeBytes;
});

// A batched message (message-format 0x80013700, what the SDKs send for a batch) carries each
// message, fully encoded, in one data section of its body; Service Bus enqueues them as
// separate messages and ignores the envelope's own properties.
const BATCH_FORMAT = 0x80013700;
const ENTITY_DISABLED = 'com.microsoft:entity-disabled';
function unbatch(buf) {
  const out = [];
  for (const s of splitSections(buf)) {
    if (s.code !== 0x75) continue;
    const inner = plain(s.typed);
    if (!Buffer.isBuffer(inner)) throw new Error('a data section does not hold binary');
    out.push(amqpMessage.decode(inner));
  }
  if (!out.length) throw new Error('no data sections');
  return out;
}

container.on('message', (ctx) => {
  const link = ctx.receiver;
  const d = ctx.delivery;
  const msg = ctx.message;
  const address = link.target ? link.target.address : '';
  if (address === '$cbs') {
    replyTo(ctx.connection, msg, { ...handleCbs(ctx.connection, msg), cbs: true });
    d.accept();
    return;
  }
  const mg = address && address.match(/^(.*)\/\$management$/i);
  if (mg) {
    const q = resolveEntity(mg[1]);
    const res = q ? handleManagement(q, msg) : { code: 404, desc: 'entity not found' };
    replyTo(ctx.connection, msg, res);
    d.accept();
    return;
  }
  const q = link._sbTarget;
  if (!q) { d.reject({ condition: 'amqp:not-found', description: 'entity not found' }); return; }
  if (q.refuseSends) {
    // Service Bus rejects each transfer to a send-disabled entity (status Disabled or
    // SendDisabled) with this condition and keeps the link attached; azservicebus classifies
    // it as fatal: the send fails at once, not retried, and the next send uses the same link.
    q.stats.refused++;
    d.reject({ condition: ENTITY_DISABLED,
      description: "Messaging entity '" + q.name + "' is currently disabled for Send operations. (fault injection)" });
    return;
  }
  // rhea hands over a message of another format undecoded (a Buffer)
  const format = ctx.format || 0;
  const size = Buffer.isBuffer(msg) ? msg.length : (msg._raw ? msg._raw.length : 0);
  if (size > q.maxMessageSizeBytes) {
    q.stats.tooLarge++;
    d.reject({ condition: 'amqp:link:message-size-exceeded',
      description: 'The received message (delivery-id:' + d.id + ', size:' + size + ' bytes) exceeds the limit (' +
        q.maxMessageSizeBytes + ' bytes) currently allowed on the link.' });
    return;
  }
  let msgs;
  if (format === 0) {
    msgs = [msg];
  } else if (format === BATCH_FORMAT) {
    try { msgs = unbatch(msg); } catch (err) {
      d.reject({ condition: 'amqp:decode-error', description: 'Malformed batched message: ' + err.message });
      return;
    }
  } else {
    d.reject({ condition: 'amqp:not-implemented', description: 'Message format ' + format + ' is not supported.' });
    return;
  }
  // a batch is taken whole or not at all
  if (q.requiresSession && msgs.some((m) => m.group_id === undefined || m.group_id === null)) {
    d.reject({ condition: 'amqp:invalid-field', description: 'The SessionId was not set on a message, and it cannot be sent to the entity. Entities that have session support enabled can only receive messages that have the SessionId set to a valid value.' });
    return;
  }
  d.accept();
  for (const m of msgs) {
    const e = entryFromMessage(m, q);
    if (q.duplicateWindowMs && e.messageId !== null) {
      const now = Date.now();
      for (const [id, t] of q.seenIds) if (t + q.duplicateWindowMs < now) q.seenIds.delete(id);
      if (q.seenIds.has(e.messageId)) {
        q.stats.duplicates++;
        continue; // accepted and silently dropped, like Service Bus
      }
      q.seenIds.set(e.messageId, now);
    }
    enqueueAt(q, e, m);
  }
});

// ---------------------------------------------------------------------------------------------
// listeners: plain AMQP, and with a certificate AMQPS and AMQP over WebSockets over TLS. Each
// keeps its port across /listener/stop and /listener/start; every accepted TCP socket is
// tracked so that a fault drops it whatever runs over it.
const WS_PATH = '/$servicebus/websocket';
// The AMQP WebSocket binding's subprotocol is "amqp"; Microsoft's .NET, Java and JavaScript
// clients offer its draft name "AMQPWSB10", which Service Bus accepts too.
const WS_SUBPROTOCOLS = ['amqp', 'AMQPWSB10'];
const sockets = new Set();
const listeners = []; // {name, port, open(port) -> server (listening or about to), server}

function addListener(name, port, open) {
  const l = { name, port, open, server: null };
  listeners.push(l);
  return l;
}

function listening() { return listeners.some((l) => l.server); }

function listenerPorts() {
  const out = {};
  for (const l of listeners) out[l.name + 'Port'] = l.port;
  return out;
}

// startListener opens l on its port (0 the first time: a free one) and records the port.
function startListener(l) {
  return new Promise((resolve, reject) => {
    const srv = l.open(l.port);
    srv.on('connection', (sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      // under TLS or WebSockets the raw socket is not rhea's: a dropped one must not throw
      sock.on('error', (err) => log('socket error', l.name, err && err.message));
    });
    srv.once('listening', () => { l.server = srv; l.port = srv.address().port; resolve(l.port); });
    srv.once('error', reject);
  });
}

async function startListeners() {
  for (const l of listeners) if (!l.server) await startListener(l);
}

async function stopListeners() {
  const closing = [];
  for (const l of listeners) {
    if (!l.server) continue;
    const srv = l.server;
    l.server = null;
    closing.push(new Promise((resolve) => srv.close(() => resolve())));
  }
  dropAll();
  await Promise.all(closing);
}

function connectionOptions() { return { max_frame_size: MAX_FRAME_SIZE }; }

function openAmqp(port) {
  return container.listen({ host: opts.host, port, ...connectionOptions() });
}

function tlsCredentials() {
  return { cert: fs.readFileSync(opts.tlsCert), key: fs.readFileSync(opts.tlsKey), minVersion: 'TLSv1.2' };
}

function openAmqps(port) {
  return container.listen({ transport: 'tls', host: opts.tlsHost || opts.host, port, ...tlsCredentials(), ...connectionOptions() });
}

// refuseUpgrade answers a WebSocket upgrade with an HTTP error and closes the socket.
function refuseUpgrade(socket, code, reason, text) {
  const body = text + '\n';
  socket.end('HTTP/1.1 ' + code + ' ' + reason + '\r\nConnection: close\r\nContent-Type: text/plain\r\n' +
    'Content-Length: ' + Buffer.byteLength(body) + '\r\n\r\n' + body);
}

function offeredSubprotocols(req) {
  return String(req.headers['sec-websocket-protocol'] || '').split(',').map((p) => p.trim()).filter(Boolean);
}

function openWebSocket(port) {
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    handleProtocols: (protocols) => Array.from(protocols).find((p) => WS_SUBPROTOCOLS.includes(p)) || false,
  });
  const srv = https.createServer(tlsCredentials(), (req, res) => {
    const path = new URL(req.url, 'https://sbemu').pathname;
    const [code, text] = path === WS_PATH ? [426, 'a WebSocket upgrade is required'] : [404, 'not found'];
    res.writeHead(code, { 'content-type': 'text/plain', connection: 'close' });
    res.end(text + '\n');
  });
  srv.on('upgrade', (req, socket, head) => {
    socket.on('error', () => {});
    const path = new URL(req.url, 'https://sbemu').pathname;
    if (path !== WS_PATH) {
      log('websocket upgrade refused: path', req.url);
      refuseUpgrade(socket, 404, 'Not Found', 'no WebSocket endpoint at ' + path + '; Service Bus listens at ' + WS_PATH);
      return;
    }
    if (!offeredSubprotocols(req).some((p) => WS_SUBPROTOCOLS.includes(p))) {
      log('websocket upgrade refused: subprotocols', req.headers['sec-websocket-protocol']);
      refuseUpgrade(socket, 400, 'Bad Request', 'the WebSocket subprotocol "amqp" (or "AMQPWSB10") is required');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => container.websocket_accept(ws, connectionOptions()));
  });
  srv.listen({ host: opts.tlsHost || opts.host, port });
  return srv;
}

function dropAll() {
  const n = sockets.size;
  for (const s of sockets) s.destroy(new Error('sbemu: connection dropped (fault injection)'));
  return n;
}

// ---------------------------------------------------------------------------------------------
// control endpoint (HTTP on loopback)
function forceDetach(queueName) {
  let n = 0;
  for (const q of queues.values()) {
    if (queueName && q.name !== queueName && (!q.dlq || q.dlq.name !== queueName)) continue;
    const all = [q, q.dlq].filter(Boolean);
    for (const qq of all) {
      for (const link of Array.from(qq.consumers)) {
        n++;
        onConsumerGone(link);
        link.close({ condition: 'amqp:link:detach-forced', description: 'The link was force-detached by the emulator (fault injection).' });
      }
    }
  }
  return n;
}

function expireLocks(q, seq) {
  let n = 0;
  for (const e of Array.from(q.locked.values())) {
    if (seq && e.seq !== seq) continue;
    n++;
    returnToQueue(q, e, true);
  }
  return n;
}

function entrySummary(e) {
  const byCode = {};
  for (const s of e.sections) byCode[s.code] = s;
  const body = byCode[0x75] ? plain(byCode[0x75].typed) : null;
  const bodySize = Buffer.isBuffer(body) ? body.length : 0;
  const omit = bodySize > SNAPSHOT_BODY_MAX;
  return {
    sequenceNumber: e.seq, messageId: e.messageId, sessionId: e.sessionId, deliveryCount: e.deliveryCount,
    locked: !!e.lockToken,
    deadLetterReason: e.extraAppProps.DeadLetterReason ? plain(e.extraAppProps.DeadLetterReason) : undefined,
    deadLetterDescription: e.extraAppProps.DeadLetterErrorDescription ? plain(e.extraAppProps.DeadLetterErrorDescription) : undefined,
    body: Buffer.isBuffer(body) && !omit ? body.toString('base64') : undefined,
    bodySize,
    bodyOmitted: omit,
  };
}

function readJSON(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (c) => { data += c; });
    req.on('end', () => { try { resolve(data ? JSON.parse(data) : {}); } catch (err) { reject(err); } });
    req.on('error', reject);
  });
}

// ROUTES:
//   GET  /healthz                         -> {"ok":true,"listening":bool,"connections":N (open TCP connections, all listeners)}
//   PUT  /queues/{name}  {lockDurationMs,maxDeliveryCount,defaultTtlMs,requiresSession,
//                         duplicateDetectionWindowMs,deadLetterOnExpiry,
//                         maxMessageSizeInKilobytes (premium only)} -> queue description (400: bad option)
//   PATCH /queues/{name} {maxMessageSizeInKilobytes} -> queue description (premium only; links
//                         already attached keep the max-message-size they were told, the new cap
//                         applies on receipt)
//   GET  /queues/{name}                   -> description + messages (active, locked, deferred, scheduled,
//                                           deadLettered)
//   DELETE /queues/{name}
//   POST /faults/drop-connections         -> {"dropped":N}
//   POST /faults/detach-links?queue=Q     -> {"detached":N}
//   POST /faults/expire-locks?queue=Q[&seq=N] -> {"expired":N}
//   POST /faults/refuse-sends?queue=Q&on=1|0 -> {"queue":Q,"refuseSends":bool}: while on, every
//                                           transfer to Q is rejected with com.microsoft:entity-disabled
//                                           (links stay attached; receives are unaffected)
//   POST /listener/stop                   -> stop accepting and drop all connections (state kept)
//   POST /listener/start                  -> listen again on the same port
//   POST /shutdown
async function handleControl(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const send = (code, obj) => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(obj)); };
  try {
    if (req.method === 'GET' && url.pathname === '/healthz') return send(200, { ok: true, listening: listening(), connections: sockets.size, tier: opts.tier });
    if (parts[0] === 'queues' && parts.length >= 2) {
      const name = parts.slice(1).join('/');
      if (req.method === 'PUT') {
        if (queues.has(name)) return send(409, { error: 'queue exists' });
        const q = createQueue(name, await readJSON(req));
        return send(201, q.describe());
      }
      const q = resolveEntity(name);
      if (!q) return send(404, { error: 'no such queue' });
      if (req.method === 'PATCH') {
        const body = await readJSON(req);
        if (q.isDLQ) return send(400, { error: 'a dead-letter queue takes its settings from its queue' });
        if (body.maxMessageSizeInKilobytes !== undefined) {
          q.maxMessageSizeBytes = maxMessageBytes(body.maxMessageSizeInKilobytes);
          q.dlq.maxMessageSizeBytes = q.maxMessageSizeBytes;
        }
        return send(200, q.describe());
      }
      if (req.method === 'GET') {
        expireMessages(q);
        const d = q.describe();
        d.messages = q.available.map(entrySummary);
        d.lockedMessages = Array.from(q.locked.values()).map(entrySummary);
        d.deferredMessages = Array.from(q.deferred.values()).map(entrySummary);
        d.scheduledMessages = Array.from(q.scheduled.values()).map(entrySummary);
        d.deadLetters = q.dlq ? q.dlq.available.concat(Array.from(q.dlq.locked.values())).map(entrySummary) : [];
        return send(200, d);
      }
      if (req.method === 'DELETE') { forceDetach(name); queues.delete(name); return send(200, {}); }
    }
    if (req.method === 'POST' && url.pathname === '/faults/drop-connections') return send(200, { dropped: dropAll() });
    if (req.method === 'POST' && url.pathname === '/faults/detach-links') return send(200, { detached: forceDetach(url.searchParams.get('queue')) });
    if (req.method === 'POST' && url.pathname === '/faults/expire-locks') {
      const q = resolveEntity(url.searchParams.get('queue'));
      if (!q) return send(404, { error: 'no such queue' });
      return send(200, { expired: expireLocks(q, Number(url.searchParams.get('seq') || 0)) });
    }
    if (req.method === 'POST' && url.pathname === '/faults/refuse-sends') {
      const q = resolveEntity(url.searchParams.get('queue'));
      if (!q) return send(404, { error: 'no such queue' });
      const on = url.searchParams.get('on');
      if (on !== '1' && on !== '0') return send(400, { error: 'on must be 1 or 0' });
      q.refuseSends = on === '1';
      return send(200, { queue: q.name, refuseSends: q.refuseSends });
    }
    if (req.method === 'POST' && url.pathname === '/listener/stop') {
      await stopListeners();
      return send(200, { listening: false });
    }
    if (req.method === 'POST' && url.pathname === '/listener/start') {
      await startListeners();
      return send(200, { listening: true, ...listenerPorts() });
    }
    if (req.method === 'POST' && url.pathname === '/shutdown') {
      send(200, {});
      setImmediate(() => process.exit(0));
      return undefined;
    }
    return send(404, { error: 'no route' });
  } catch (err) {
    if (err instanceof BadRequest || err instanceof SyntaxError) return send(400, { error: String(err.message) });
    return send(500, { error: String(err && err.message) });
  }
}

async function main() {
  addListener('amqp', opts.port, openAmqp);
  if (opts.tlsCert) {
    addListener('amqps', opts.amqpsPort, openAmqps);
    addListener('wss', opts.wssPort, openWebSocket);
  }
  await startListeners();
  const ctl = http.createServer((req, res) => { handleControl(req, res); });
  await new Promise((resolve, reject) => { ctl.once('error', reject); ctl.listen(opts.controlPort, opts.host, resolve); });
  const controlPort = ctl.address().port;
  process.stdout.write(JSON.stringify({ ready: true, ...listenerPorts(), controlPort }) + '\n');
  // exit when the parent goes away (stdin closes)
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
  // periodic TTL sweep
  setInterval(() => { for (const q of queues.values()) { expireMessages(q); } }, 250).unref();
}

main().catch((err) => {
  console.error('sbemu: ' + (err && err.stack ? err.stack : err));
  process.exit(1);
});
