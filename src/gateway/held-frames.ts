import { TenantryError } from '../errors.js';
import { errorResponse, readyForQuery } from './protocol.js';

/** Frames a client sent while its relay waited for a backend, with their size. */
export class HeldFrames {
  frames: Buffer[] = [];
  bytes = 0;

  get length(): number {
    return this.frames.length;
  }

  push(frame: Buffer): void {
    this.frames.push(frame);
    this.bytes += frame.length;
  }

  /** Takes every held frame, in order. */
  take(): Buffer[] {
    const frames = this.frames;
    this.frames = [];
    this.bytes = 0;
    return frames;
  }
}

/** What answering held frames with a checkout error comes to. */
export interface HeldFailure {
  /** Frames for the client. */
  readonly replies: Buffer[];
  /** The batch after the last Sync is still open: skip the client's messages up to its Sync. */
  readonly skipUntilSync: boolean;
  /** A Terminate was among the frames: close once the replies are written. */
  readonly terminate: boolean;
}

/**
 * Answers held messages with the checkout error, as PostgreSQL would answer a failed statement:
 * an error then ReadyForQuery per simple query or function call; one error per extended batch,
 * ReadyForQuery at its Sync.
 */
export function failHeld(frames: readonly Buffer[], error: unknown): HeldFailure {
  const failure = error instanceof TenantryError ? error : undefined;
  const response = errorResponse({
    severity: 'ERROR',
    code: failure?.sqlstate ?? '08006',
    message: failure ? `${failure.code}: ${failure.message}` : String(error),
  });
  const replies: Buffer[] = [];
  let reported = false;
  for (const frame of frames) {
    const type = frame[0];
    if (type === 0x58 /* X */) return { replies, skipUntilSync: reported, terminate: true };
    if (type === 0x51 /* Q */ || type === 0x46 /* F */) {
      replies.push(response, readyForQuery('I'));
    } else if (type === 0x53 /* S */) {
      if (!reported) replies.push(response);
      replies.push(readyForQuery('I'));
      reported = false;
      continue;
    } else if (!reported) replies.push(response);
    reported = type !== 0x51 && type !== 0x46;
  }
  return { replies, skipUntilSync: reported, terminate: false };
}
