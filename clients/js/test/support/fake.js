// A scripted stand-in for the browser WebSocket, for unit tests of the
// client's logic without a server: the test plays the server's part.

/** Every socket made, newest last. */
export const sockets = [];

export class FakeSocket {
  /** @param {string} url */
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    /** @type {any[]} ops the client sent, parsed */
    this.sent = [];
    /** @type {any} */ this.onopen = null;
    /** @type {any} */ this.onmessage = null;
    /** @type {any} */ this.onclose = null;
    /** @type {any} */ this.onerror = null;
    sockets.push(this);
  }

  /** @param {string} text */
  send(text) {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(JSON.parse(text));
  }

  /**
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = "") {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.closedWith = { code, reason };
  }

  // --- the server's side

  accept() {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** @param {object} msg */
  push(msg) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }

  /**
   * @param {number} code
   * @param {string} [reason]
   */
  drop(code, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** Ops of one kind the client sent. */
  ops(kind) {
    return this.sent.filter((o) => o.op === kind);
  }
}

/** Forgets the sockets of earlier tests. */
export function resetSockets() {
  sockets.length = 0;
}

/**
 * Resolves once `check` returns truthy, polling every 5 ms, or rejects
 * after `ms` with `what` in the message.
 * @param {() => any} check
 * @param {string} what
 * @param {number} [ms]
 */
export async function until(check, what, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** An unsigned JWT-shaped token whose `exp` is `expS` seconds from now. */
export function fakeToken(expS = 3600, sub = "u1") {
  const b = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b({ alg: "HS256" })}.${b({ sub, exp: Math.floor(Date.now() / 1000) + expS })}.sig`;
}
