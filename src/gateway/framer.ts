import { ProtocolViolation } from './protocol.js';

const EMPTY = Buffer.alloc(0);

/**
 * Splits a byte stream into typed frames (type byte + int32 length). Complete frames are
 * returned as views of the received chunk (no copy), or read in place ({@link frameLength},
 * {@link buffer}, {@link offset}, {@link skip}: no allocation at all); a frame split across
 * chunks is joined once, when its last byte arrives, so large messages cost one copy and not one
 * per chunk.
 */
export class Framer {
  #buffer: Buffer = EMPTY;
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

  /** Forgets everything received (the stream is abandoned). */
  reset(): void {
    this.#buffer = EMPTY;
    this.#offset = 0;
    this.#parts = [];
    this.#partBytes = 0;
    this.#need = 0;
  }

  /** Bytes received but not yet returned as frames. */
  get pending(): number {
    return this.#buffer.length - this.#offset + this.#partBytes;
  }

  /** The buffer holding the next frame (valid after {@link frameLength} answered non-zero). */
  get buffer(): Buffer {
    return this.#buffer;
  }

  /** Where the next frame starts in {@link buffer}. */
  get offset(): number {
    return this.#offset;
  }

  /**
   * The length (type byte included) of the next frame when it is complete, at {@link offset}
   * in {@link buffer}; 0 until more bytes arrive. Throws {@link ProtocolViolation} for a length
   * below 4 or above the maximum.
   */
  frameLength(): number {
    if (this.#parts.length > 0) return 0;
    const available = this.#buffer.length - this.#offset;
    if (available < 5) return 0;
    const length = this.#buffer.readInt32BE(this.#offset + 1);
    if (length < 4 || length > this.#maxLength) {
      throw new ProtocolViolation(`invalid message length ${length}`);
    }
    if (available < length + 1) {
      // Park the partial frame; it is joined once when complete.
      this.#parts = [this.#buffer.subarray(this.#offset)];
      this.#partBytes = available;
      this.#need = length + 1;
      this.#buffer = EMPTY;
      this.#offset = 0;
      return 0;
    }
    return length + 1;
  }

  /** Moves past the frame {@link frameLength} measured. */
  skip(length: number): void {
    this.#offset += length;
  }

  /**
   * The next complete frame, or `undefined` until more bytes arrive. Throws
   * {@link ProtocolViolation} for a length below 4 or above the maximum.
   */
  next(): Buffer | undefined {
    const length = this.frameLength();
    if (length === 0) return undefined;
    const start = this.#offset;
    this.#offset += length;
    return this.#buffer.subarray(start, this.#offset);
  }
}

/**
 * Collects bytes to write, merging ranges that lie next to each other in memory (frames of the
 * same received chunk) into one, so a passed-through chunk is written as it came — as the very
 * Buffer received when it is passed through whole, with no allocation.
 */
export class FrameBatch {
  #parts: Buffer[] = [];
  /** The current contiguous run: its memory, byte range, and the Buffer it equals, if any. */
  #memory: ArrayBufferLike | undefined;
  #low = 0;
  #high = 0;
  #whole: Buffer | undefined;

  /** Appends a frame (or any bytes). */
  add(bytes: Buffer): void {
    this.addRange(bytes, 0, bytes.length);
  }

  /** Appends `buffer[start, end)`. */
  addRange(buffer: Buffer, start: number, end: number): void {
    const low = buffer.byteOffset + start;
    const high = buffer.byteOffset + end;
    if (this.#memory === buffer.buffer && this.#high === low) {
      this.#high = high;
      this.#whole =
        this.#low === buffer.byteOffset && high === buffer.byteOffset + buffer.length ? buffer : undefined;
      return;
    }
    if (this.#memory !== undefined) this.#parts.push(this.#run());
    this.#memory = buffer.buffer;
    this.#low = low;
    this.#high = high;
    this.#whole = start === 0 && end === buffer.length ? buffer : undefined;
  }

  #run(): Buffer {
    return this.#whole ?? Buffer.from(this.#memory as ArrayBuffer, this.#low, this.#high - this.#low);
  }

  /** Whether nothing was added. */
  get empty(): boolean {
    return this.#memory === undefined;
  }

  /** Takes everything added as one buffer (no copy when it was one contiguous run). */
  take(): Buffer {
    const run = this.#run();
    this.#memory = undefined;
    this.#whole = undefined;
    if (this.#parts.length === 0) return run;
    const parts = this.#parts;
    parts.push(run);
    this.#parts = [];
    return Buffer.concat(parts);
  }
}
