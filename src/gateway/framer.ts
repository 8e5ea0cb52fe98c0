import { ProtocolViolation } from './protocol.js';

/**
 * Splits a byte stream into typed frames (type byte + int32 length). Complete frames are
 * returned as views of the received chunk (no copy); a frame split across chunks is joined once,
 * when its last byte arrives, so large messages cost one copy and not one per chunk.
 */
export class Framer {
  #buffer: Buffer = Buffer.alloc(0);
  #offset = 0;
  /** Chunks of a frame still incomplete, and how many bytes they hold. */
  #parts: Buffer[] = [];
  #partBytes = 0;
  #need = 0;
  readonly #maxLength: number;

  /** `maxLength`: the largest frame accepted (a longer announced length is a violation). */
  constructor(maxLength: number) {
    this.#maxLength = maxLength;
  }

  /** Adds received bytes. */
  push(chunk: Buffer): void {
    if (this.#parts.length > 0) {
      this.#parts.push(chunk);
      this.#partBytes += chunk.length;
      if (this.#partBytes < this.#need) return;
      this.#buffer = Buffer.concat(this.#parts, this.#partBytes);
      this.#offset = 0;
      this.#parts = [];
      this.#partBytes = 0;
      return;
    }
    if (this.#offset >= this.#buffer.length) {
      this.#buffer = chunk;
    } else {
      this.#buffer = Buffer.concat([this.#buffer.subarray(this.#offset), chunk]);
    }
    this.#offset = 0;
  }

  /** Bytes received but not yet returned as frames. */
  get pending(): number {
    return this.#buffer.length - this.#offset + this.#partBytes;
  }

  /**
   * The next complete frame, or `undefined` until more bytes arrive. Throws
   * {@link ProtocolViolation} for a length below 4 or above the maximum.
   */
  next(): Buffer | undefined {
    if (this.#parts.length > 0) return undefined;
    const available = this.#buffer.length - this.#offset;
    if (available < 5) return undefined;
    const length = this.#buffer.readInt32BE(this.#offset + 1);
    if (length < 4 || length > this.#maxLength) {
      throw new ProtocolViolation(`invalid message length ${length}`);
    }
    if (available < length + 1) {
      // Park the partial frame; it is joined once when complete.
      this.#parts = [this.#buffer.subarray(this.#offset)];
      this.#partBytes = available;
      this.#need = length + 1;
      this.#buffer = Buffer.alloc(0);
      this.#offset = 0;
      return undefined;
    }
    const start = this.#offset;
    this.#offset += length + 1;
    return this.#buffer.subarray(start, this.#offset);
  }
}

/**
 * Collects frames to write, merging frames that lie next to each other in the same received
 * chunk back into one view, so a passed-through chunk is written as it came.
 */
export class FrameBatch {
  #frames: Buffer[] = [];

  /** Appends a frame (or any bytes). */
  add(bytes: Buffer): void {
    const last = this.#frames[this.#frames.length - 1];
    if (last && last.buffer === bytes.buffer && last.byteOffset + last.length === bytes.byteOffset) {
      this.#frames[this.#frames.length - 1] = Buffer.from(
        last.buffer,
        last.byteOffset,
        last.length + bytes.length,
      );
      return;
    }
    this.#frames.push(bytes);
  }

  /** Whether nothing was added. */
  get empty(): boolean {
    return this.#frames.length === 0;
  }

  /** Takes everything added as one buffer (no copy when it was one contiguous run). */
  take(): Buffer {
    const frames = this.#frames;
    this.#frames = [];
    return frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames);
  }
}
