/**
 * The responses a backend still owes, in order — one entry per frontend message that gets an
 * answer. It lets the gateway hide the answers to messages it injected (a re-Parse, a SET of
 * the client's session parameters), answer messages it did not forward (a Parse the backend
 * already has), and know when a transaction is over.
 */

/** The frontend message an entry answers: Parse, Bind, Describe, Execute, Close, Sync, Query, FunctionCall. */
export type EntryKind = 'P' | 'B' | 'D' | 'E' | 'C' | 'S' | 'Q' | 'F';

/** One owed response. */
export interface Entry {
  readonly kind: EntryKind;
  /** Injected by the gateway: its answers are not forwarded to the client. */
  readonly swallow: boolean;
  /** Answered by the gateway itself (this frame) once everything before it was forwarded. */
  readonly synthetic?: Buffer;
  /** After the synthetic answer, a ReadyForQuery with the current status (a refused simple query). */
  readonly readyAfter?: boolean;
  /** A Parse that prepares this backend statement name (forgotten if the Parse is skipped or fails). */
  readonly prepares?: string;
  /** A Close of this backend statement (remembered again if the Close is skipped or fails). */
  readonly closes?: string;
}

/** FIFO of owed responses with PostgreSQL's error-skipping rule for the extended protocol. */
export class ResponseQueue {
  #entries: Entry[] = [];
  #head = 0;
  /** After an error in an extended-protocol batch the backend ignores messages until Sync. */
  skipping = false;

  get head(): Entry | undefined {
    return this.#entries[this.#head];
  }

  get empty(): boolean {
    return this.#head >= this.#entries.length;
  }

  push(entry: Entry): void {
    this.#entries.push(entry);
  }

  shift(): Entry | undefined {
    const entry = this.#entries[this.#head];
    if (entry === undefined) return undefined;
    this.#head++;
    if (this.#head > 64 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
    return entry;
  }

  /** Drops entries up to (not including) the next Sync: the backend skips those messages. */
  dropUntilSync(onDrop: (entry: Entry) => void): void {
    for (let entry = this.head; entry && entry.kind !== 'S'; entry = this.head) onDrop(this.shift() as Entry);
    this.skipping = true;
  }

  /** On ReadyForQuery: drops skipped entries and answers the Sync/Query/FunctionCall it ends. */
  popThroughSync(onDrop: (entry: Entry) => void): Entry | undefined {
    this.skipping = false;
    for (let entry = this.shift(); entry; entry = this.shift()) {
      if (entry.kind === 'S' || entry.kind === 'Q' || entry.kind === 'F') return entry;
      onDrop(entry);
    }
    return undefined;
  }

  /** Forgets everything (the backend is gone). */
  clear(): void {
    this.#entries = [];
    this.#head = 0;
    this.skipping = false;
  }
}
