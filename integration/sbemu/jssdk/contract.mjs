// Contract test of the Service Bus emulator with Microsoft's JavaScript SDK (@azure/service-bus),
// so the emulator is not tuned to the Go SDK alone. Run by TestJSSDKContract (jssdk_test.go).
//
// Environment:
//   SBEMU_CONNECTION_STRING  connection string (UseDevelopmentEmulator=true: plain AMQP)
//   SBEMU_QUEUE              an empty queue; its lock duration is SBEMU_LOCK_DURATION_MS
//   SBEMU_SESSION_QUEUE      an empty queue that requires sessions
//   SBEMU_LOCK_DURATION_MS   both queues' lock duration (short: the renew step outlives it)
//   SBEMU_STEP_TIMEOUT_MS    bound on each step (default 20000)
//   SBEMU_DEADLETTER_REASON, SBEMU_DEADLETTER_DESCRIPTION  what the deadletter step sets
//
// Prints one JSON line per step: {"step":"...","ok":true,...} or {"step":"...","ok":false,
// "error":"..."}. The steps share the queue, so the first failure skips the rest (each printed
// with "skipped":true). Exit status 0 only when every step passed.
//
// What the Go test checks afterwards through the emulator's control endpoint: the queue is
// empty (js-defer deferred and then completed, the scheduled messages completed or cancelled,
// js-rad received and deleted), one message (id js-deadletter) sits in the dead-letter
// sub-queue with the reason and description it was given, one (id js-ttl) was dead-lettered on
// expiry, and the session queue is empty.

const cs = process.env.SBEMU_CONNECTION_STRING;
const queue = process.env.SBEMU_QUEUE;
const sessionQueue = process.env.SBEMU_SESSION_QUEUE;
const lockMs = Number(process.env.SBEMU_LOCK_DURATION_MS || 0);
const stepTimeoutMs = Number(process.env.SBEMU_STEP_TIMEOUT_MS || 20000);
const DEADLETTER_REASON = process.env.SBEMU_DEADLETTER_REASON || 'js-contract-reason';
const DEADLETTER_DESCRIPTION = process.env.SBEMU_DEADLETTER_DESCRIPTION || 'dead-lettered by the JavaScript SDK contract test';
if (!cs || !queue || !sessionQueue || !(lockMs > 0)) {
  console.error('contract.mjs: set SBEMU_CONNECTION_STRING, SBEMU_QUEUE, SBEMU_SESSION_QUEUE and SBEMU_LOCK_DURATION_MS');
  process.exit(2);
}

function report(line) { process.stdout.write(JSON.stringify(line) + '\n'); }

// The SDK's @azure/core-* dependencies, as pinned in package-lock.json, declare Node.js 20 or
// later (Debian 12's own nodejs package is 18): say so instead of failing somewhere inside.
if (Number(process.versions.node.split('.')[0]) < 20) {
  report({ step: 'node', ok: false, error: `Node.js 20 or later is needed for @azure/service-bus's dependencies; this is ${process.version}` });
  process.exit(1);
}
// imported after the check above (a static import would load before it)
const { ServiceBusClient } = await import('@azure/service-bus');

function check(cond, what) { if (!cond) throw new Error(what); }

function eq(got, want, what) {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

function withTimeout(p, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// waitFor polls cond (async) every 50 ms until it returns a truthy value or the deadline passes.
async function waitFor(cond, what, ms = stepTimeoutMs) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// receiveOne receives exactly one message (waiting until one arrives).
async function receiveOne(receiver, what) {
  return waitFor(async () => {
    const msgs = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1000 });
    check(msgs.length <= 1, `${what}: got ${msgs.length} messages, want 1`);
    return msgs[0];
  }, what);
}

const client = new ServiceBusClient(cs, {
  retryOptions: { maxRetries: 2, retryDelayInMs: 100, timeoutInMs: 10000 },
});
const sender = client.createSender(queue);
// Automatic lock renewal is off: the renew step must prove the emulator renewed the lock
// when asked, not that the SDK renewed it on its own.
const receiver = client.createReceiver(queue, { receiveMode: 'peekLock', maxAutoLockRenewalDurationInMs: 0 });
const dlqReceiver = client.createReceiver(queue, { subQueueType: 'deadLetter', receiveMode: 'peekLock', maxAutoLockRenewalDurationInMs: 0 });

const sent = {
  body: { hello: 'world', n: 1 },
  messageId: 'js-complete',
  contentType: 'application/json',
  replyTo: 'replies',
  replyToSessionId: 'reply-session-1',
  correlationId: 'corr-1',
  subject: 'reset',
  applicationProperties: { kind: 'reset', attempt: 3, urgent: true },
};

const state = {};

const steps = [
  ['send', async () => {
    // one message on its own, then two in one batch (the SDK sends an array as one batched
    // AMQP message, which Service Bus splits into its messages)
    await sender.sendMessages(sent);
    await sender.sendMessages([
      { body: 'abandon me', messageId: 'js-abandon', contentType: 'text/plain' },
      { body: 'dead-letter me', messageId: 'js-deadletter', contentType: 'text/plain' },
    ]);
  }],
  ['peek', async () => {
    const peeked = await receiver.peekMessages(10);
    eq(peeked.map((m) => m.messageId), ['js-complete', 'js-abandon', 'js-deadletter'], 'peeked message ids');
    const seqs = peeked.map((m) => Number(m.sequenceNumber));
    check(seqs.every((s, i) => s > 0 && (i === 0 || s > seqs[i - 1])), `sequence numbers not increasing: ${seqs}`);
    eq(peeked[0].body, sent.body, 'peeked body');
    check(peeked.every((m) => m.lockToken === undefined), 'a peeked message carries a lock token');
    // peeking does not lock: the next peek (from the start) sees the same messages
    const again = await receiver.peekMessages(10, { fromSequenceNumber: peeked[0].sequenceNumber });
    eq(again.map((m) => m.messageId), ['js-complete', 'js-abandon', 'js-deadletter'], 'peeked again');
    return { sequenceNumbers: seqs };
  }],
  ['receive', async () => {
    const before = Date.now();
    const m = await receiveOne(receiver, 'peek-lock receive');
    eq(m.messageId, sent.messageId, 'messageId');
    eq(m.body, sent.body, 'body');
    eq(m.contentType, sent.contentType, 'contentType');
    eq(m.replyTo, sent.replyTo, 'replyTo');
    eq(m.replyToSessionId, sent.replyToSessionId, 'replyToSessionId');
    eq(m.correlationId, sent.correlationId, 'correlationId');
    eq(m.subject, sent.subject, 'subject');
    eq(m.applicationProperties, sent.applicationProperties, 'applicationProperties');
    eq(m.deliveryCount, 0, 'deliveryCount on first delivery (the JavaScript SDK counts from 0)');
    check(typeof m.lockToken === 'string' && /^[0-9a-f-]{36}$/i.test(m.lockToken), `lock token ${m.lockToken}`);
    check(m.lockedUntilUtc instanceof Date && m.lockedUntilUtc.getTime() > before, `lockedUntilUtc ${m.lockedUntilUtc}`);
    check(m.enqueuedTimeUtc instanceof Date && m.enqueuedTimeUtc.getTime() <= Date.now(), `enqueuedTimeUtc ${m.enqueuedTimeUtc}`);
    check(Number(m.sequenceNumber) > 0, `sequenceNumber ${m.sequenceNumber}`);
    state.received = m;
    return { lockToken: m.lockToken, lockedUntil: m.lockedUntilUtc.toISOString() };
  }],
  ['renew', async () => {
    const m = state.received;
    const oldUntil = m.lockedUntilUtc.getTime();
    // renew halfway through the lock: the renewed lock ends about lockMs/2 after the old one
    await waitFor(async () => Date.now() > oldUntil - lockMs / 2, 'half the lock passing');
    const newUntil = await receiver.renewMessageLock(m);
    check(newUntil instanceof Date, `renewMessageLock returned ${newUntil}`);
    check(newUntil.getTime() > oldUntil, `renewed lock ends ${newUntil.toISOString()}, not after ${new Date(oldUntil).toISOString()}`);
    check(Math.abs(newUntil.getTime() - (Date.now() + lockMs)) < 2000, `renewed lock ends ${newUntil.toISOString()}, not about one lock duration from now`);
    eq(m.lockedUntilUtc.getTime(), newUntil.getTime(), 'message.lockedUntilUtc after renew');
    check(newUntil.getTime() > oldUntil + lockMs / 4, `renewed lock ends ${newUntil.toISOString()}, too close to ${new Date(oldUntil).toISOString()}`);
    // outlive the original lock: completing (next step) must still work because the lock
    // was renewed
    await waitFor(async () => Date.now() > oldUntil + lockMs / 8, 'original lock passing');
    return { oldLockedUntil: new Date(oldUntil).toISOString(), newLockedUntil: newUntil.toISOString() };
  }],
  ['complete', async () => {
    await receiver.completeMessage(state.received);
    const peeked = await receiver.peekMessages(10, { fromSequenceNumber: state.received.sequenceNumber });
    eq(peeked.map((m) => m.messageId), ['js-abandon', 'js-deadletter'], 'peeked after complete');
  }],
  ['abandon', async () => {
    const m = await receiveOne(receiver, 'receive js-abandon');
    eq(m.messageId, 'js-abandon', 'messageId');
    eq(m.body, 'abandon me', 'body');
    // properties to modify are merged into the redelivered message's application properties
    await receiver.abandonMessage(m, { retried: true, note: 'abandoned once' });
    const again = await receiveOne(receiver, 'receive js-abandon again');
    eq(again.messageId, 'js-abandon', 'redelivered messageId');
    eq(again.applicationProperties, { retried: true, note: 'abandoned once' }, 'applicationProperties after abandon');
    eq(again.deliveryCount, m.deliveryCount + 1, 'deliveryCount after abandon');
    check(again.lockToken !== m.lockToken, 'redelivery reused the lock token');
    await receiver.completeMessage(again);
    return { deliveryCount: again.deliveryCount };
  }],
  ['lock-expiry', async () => {
    // a lock that ran out cannot settle (MessageLockLost) and the message comes back
    const m = await receiveOne(receiver, 'receive js-deadletter');
    eq(m.messageId, 'js-deadletter', 'messageId');
    const until = m.lockedUntilUtc.getTime();
    await waitFor(async () => Date.now() > until + 100, 'lock running out');
    let err = null;
    try { await receiver.renewMessageLock(m); } catch (e) { err = e; }
    check(err !== null, 'renewing a lock that expired succeeded');
    eq(err.code, 'MessageLockLost', `renew: error code (${err.message})`);
    err = null;
    try { await receiver.completeMessage(m); } catch (e) { err = e; }
    check(err !== null, 'completing a message whose lock expired succeeded');
    eq(err.code, 'MessageLockLost', `error code (${err.message})`);
    const again = await receiveOne(receiver, 'receive js-deadletter after lock expiry');
    eq(again.messageId, 'js-deadletter', 'redelivered messageId');
    eq(again.deliveryCount, m.deliveryCount + 1, 'deliveryCount after lock expiry');
    await receiver.abandonMessage(again);
  }],
  ['deadletter', async () => {
    const m = await receiveOne(receiver, 'receive js-deadletter');
    eq(m.messageId, 'js-deadletter', 'messageId');
    await receiver.deadLetterMessage(m, { deadLetterReason: DEADLETTER_REASON, deadLetterErrorDescription: DEADLETTER_DESCRIPTION });
    const d = await receiveOne(dlqReceiver, 'receive from the dead-letter sub-queue');
    eq(d.messageId, 'js-deadletter', 'dead-lettered messageId');
    eq(d.body, 'dead-letter me', 'dead-lettered body');
    eq(d.deadLetterReason, DEADLETTER_REASON, 'deadLetterReason');
    eq(d.deadLetterErrorDescription, DEADLETTER_DESCRIPTION, 'deadLetterErrorDescription');
    eq(d.deadLetterSource, queue, 'deadLetterSource');
    state.deadLetterSeq = d.sequenceNumber;
    // leave it in the dead-letter queue for the Go side to inspect
    await dlqReceiver.abandonMessage(d);
    const peeked = await dlqReceiver.peekMessages(10);
    eq(peeked.map((x) => x.messageId), ['js-deadletter'], 'dead-letter queue after abandon');
  }],
  ['defer', async () => {
    // a deferred message is set aside: only receiveDeferredMessages (by sequence number)
    // gets it, and it is settled through $management
    await sender.sendMessages({ body: 'defer me', messageId: 'js-defer' });
    const m = await receiveOne(receiver, 'receive js-defer');
    eq(m.messageId, 'js-defer', 'messageId');
    await receiver.deferMessage(m);
    const peeked = await receiver.peekMessages(10, { fromSequenceNumber: m.sequenceNumber });
    eq(peeked.map((x) => [x.messageId, x.state]), [['js-defer', 'deferred']], 'peeked after defer');
    const [d] = await receiver.receiveDeferredMessages([m.sequenceNumber]);
    check(d !== undefined, 'receiveDeferredMessages returned nothing');
    eq(d.messageId, 'js-defer', 'deferred messageId');
    eq(d.state, 'deferred', 'deferred message state');
    eq(d.deliveryCount, m.deliveryCount + 1, 'deliveryCount of the deferred message');
    check(typeof d.lockToken === 'string' && d.lockToken !== m.lockToken, `deferred lock token ${d.lockToken}`);
    // a message received by sequence number settles through $management (update-disposition):
    // abandoned, it stays deferred, with its properties modified
    await receiver.abandonMessage(d, { step: 'defer' });
    const [d2] = await receiver.receiveDeferredMessages([m.sequenceNumber]);
    check(d2 !== undefined, 'the abandoned deferred message is gone');
    eq(d2.applicationProperties, { step: 'defer' }, 'applicationProperties after abandon through $management');
    await receiver.completeMessage(d2);
    let err = null;
    try { await receiver.receiveDeferredMessages([m.sequenceNumber]); } catch (e) { err = e; }
    check(err !== null, 'a completed deferred message was received again');
    eq(err.code, 'MessageNotFound', `error code (${err.message})`);
  }],
  ['schedule', async () => {
    // scheduled through $management (scheduleMessages) and through the link
    // (scheduledEnqueueTimeUtc): held until their time, peeked as scheduled; one cancelled
    // far enough ahead that scheduling, peeking and cancelling finish before it on a loaded
    // machine; a message received before it fails the step below
    const at = new Date(Date.now() + 3000);
    const [seq] = await sender.scheduleMessages({ body: 'scheduled', messageId: 'js-scheduled' }, at);
    const [cancelSeq] = await sender.scheduleMessages({ body: 'cancel me', messageId: 'js-cancelled' }, new Date(Date.now() + 600000));
    await sender.sendMessages({ body: 'scheduled by link', messageId: 'js-scheduled-link', scheduledEnqueueTimeUtc: at });
    const peeked = await receiver.peekMessages(10, { fromSequenceNumber: seq });
    eq(peeked.map((x) => [x.messageId, x.state]), [['js-scheduled', 'scheduled'], ['js-cancelled', 'scheduled'],
      ['js-scheduled-link', 'scheduled']], 'peeked scheduled messages');
    await sender.cancelScheduledMessages(cancelSeq);
    // both become active at the same time, in either order
    const want = new Set(['js-scheduled', 'js-scheduled-link']);
    while (want.size) {
      const m = await receiveOne(receiver, 'receive a scheduled message');
      check(want.delete(m.messageId), `received ${m.messageId}, want one of ${[...want]}`);
      // Node may run a timer a millisecond early
      check(Date.now() >= at.getTime() - 50, `${m.messageId} arrived before its scheduled time`);
      eq(m.scheduledEnqueueTimeUtc && m.scheduledEnqueueTimeUtc.getTime(), at.getTime(), 'scheduledEnqueueTimeUtc');
      await receiver.completeMessage(m);
    }
    const after = await receiver.peekMessages(10, { fromSequenceNumber: seq });
    eq(after.length, 0, 'messages left after the schedule step (the cancelled one must be gone)');
  }],
  ['empty-peek', async () => {
    const peeked = await receiver.peekMessages(10);
    eq(peeked.length, 0, 'messages peeked on an empty queue');
  }],
  ['ttl', async () => {
    await sender.sendMessages({ body: 'expire me', messageId: 'js-ttl', timeToLive: 300 });
    const d = await waitFor(async () => {
      const peeked = await dlqReceiver.peekMessages(10, { fromSequenceNumber: state.deadLetterSeq });
      return peeked.find((x) => x.messageId === 'js-ttl');
    }, 'expired message in the dead-letter queue');
    eq(d.deadLetterReason, 'TTLExpiredException', 'deadLetterReason of an expired message');
    eq(d.timeToLive, 300, 'timeToLive');
  }],
  ['receive-and-delete', async () => {
    // the message is gone once handed over: no lock, nothing left to peek or settle
    await sender.sendMessages({ body: 'take me', messageId: 'js-rad' });
    const rad = client.createReceiver(queue, { receiveMode: 'receiveAndDelete' });
    try {
      const m = await receiveOne(rad, 'receive-and-delete');
      eq(m.messageId, 'js-rad', 'messageId');
      eq(m.lockToken, undefined, 'lock token in receive-and-delete mode');
      const peeked = await receiver.peekMessages(10, { fromSequenceNumber: m.sequenceNumber });
      eq(peeked.map((x) => x.messageId), [], 'peeked after receive-and-delete');
    } finally {
      await rad.close();
    }
  }],
  ['session-accept', async () => {
    const sessionSender = client.createSender(sessionQueue);
    await sessionSender.sendMessages({ body: 'for A', messageId: 'js-session-a', sessionId: 'A' });
    await sessionSender.sendMessages({ body: 'for B', messageId: 'js-session-b', sessionId: 'B' });
    await sessionSender.close();
    const before = Date.now();
    const r = await client.acceptSession(sessionQueue, 'A', { maxAutoLockRenewalDurationInMs: 0 });
    try {
      eq(r.sessionId, 'A', 'accepted sessionId');
      check(r.sessionLockedUntilUtc instanceof Date && r.sessionLockedUntilUtc.getTime() > before,
        `sessionLockedUntilUtc ${r.sessionLockedUntilUtc}`);
      const peeked = await r.peekMessages(10);
      eq(peeked.map((m) => m.messageId), ['js-session-a'], 'peeked in session A');
      const m = await receiveOne(r, 'receive in session A');
      eq(m.messageId, 'js-session-a', 'messageId');
      eq(m.sessionId, 'A', 'sessionId');
      const oldUntil = r.sessionLockedUntilUtc.getTime();
      await waitFor(async () => Date.now() > oldUntil - lockMs / 2, 'half the session lock passing');
      const newUntil = await r.renewSessionLock();
      check(newUntil.getTime() > oldUntil, `renewed session lock ends ${newUntil.toISOString()}, not after ${new Date(oldUntil).toISOString()}`);
      await r.setSessionState('state of A');
      eq(String(await r.getSessionState()), 'state of A', 'session state');
      await r.completeMessage(m);
    } finally {
      await r.close();
    }
  }],
  ['session-accept-next', async () => {
    const r = await client.acceptNextSession(sessionQueue, { maxAutoLockRenewalDurationInMs: 0 });
    try {
      eq(r.sessionId, 'B', 'next sessionId');
      const m = await receiveOne(r, 'receive in the next session');
      eq(m.messageId, 'js-session-b', 'messageId');
      eq(m.sessionId, 'B', 'sessionId');
      await r.completeMessage(m);
    } finally {
      await r.close();
    }
  }],
  ['errors', async () => {
    // the errors a client must tell apart, as the SDK names them
    const expectCode = async (what, want, fn) => {
      let err = null;
      try { await fn(); } catch (e) { err = e; }
      check(err !== null, `${what} succeeded`);
      eq(err.code, want, `${what}: error code (${err.message})`);
    };
    await expectCode('send to a queue that does not exist', 'MessagingEntityNotFound',
      () => client.createSender(queue + '-missing').sendMessages({ body: 'x' }));
    const wrongKey = new ServiceBusClient(cs.replace(/SharedAccessKey=[^;]*/, 'SharedAccessKey=d3Jvbmcta2V5'),
      { retryOptions: { maxRetries: 0, timeoutInMs: 10000 } });
    try {
      await expectCode('send with a wrong key', 'UnauthorizedAccess', () => wrongKey.createSender(queue).sendMessages({ body: 'x' }));
    } finally {
      await wrongKey.close();
    }
    const sessionSender = client.createSender(sessionQueue);
    await sessionSender.sendMessages({ body: 'held', messageId: 'js-session-held', sessionId: 'H' });
    await sessionSender.close();
    const holder = await client.acceptSession(sessionQueue, 'H', { maxAutoLockRenewalDurationInMs: 0 });
    try {
      await expectCode('accept a session another receiver holds', 'SessionCannotBeLocked',
        () => client.acceptSession(sessionQueue, 'H', { maxAutoLockRenewalDurationInMs: 0 }));
      const m = await receiveOne(holder, 'receive in session H');
      await holder.completeMessage(m);
    } finally {
      await holder.close();
    }
  }],
];

let failed = false;
for (const [name, fn] of steps) {
  if (failed) { report({ step: name, ok: false, skipped: true, error: 'skipped after an earlier failure' }); continue; }
  const start = Date.now();
  try {
    const extra = await withTimeout(fn(), stepTimeoutMs, name);
    report({ step: name, ok: true, ms: Date.now() - start, ...(extra || {}) });
  } catch (err) {
    failed = true;
    report({ step: name, ok: false, ms: Date.now() - start, error: String(err && (err.stack || err.message) || err),
      code: err && err.code, name: err && err.name });
  }
}
try {
  await withTimeout(client.close(), 10000, 'close');
} catch (err) {
  report({ step: 'close', ok: false, error: String(err && err.message || err) });
  failed = true;
}
process.exit(failed ? 1 : 0);
