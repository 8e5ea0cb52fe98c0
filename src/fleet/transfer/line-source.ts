import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { corrupt } from './format.js';

/** Largest line accepted (one row): a longer one means a damaged file. */
const MAX_LINE = 256 * 1024 * 1024;

/** The chunks of `input`, gunzipped when they start with gzip's magic bytes. */
async function* maybeGunzip(input: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
  const iterator = input[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done) return;
  const head = Buffer.isBuffer(first.value) ? first.value : Buffer.from(first.value);
  const rest = async function* () {
    try {
      yield head;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
      }
    } finally {
      // a reader that stopped early closes the input (a file stream) too
      await iterator.return?.();
    }
  };
  if (head[0] !== 0x1f || head[1] !== 0x8b) {
    yield* rest();
    return;
  }
  const gunzip = createGunzip();
  const feed = (async () => {
    try {
      for await (const chunk of rest()) {
        if (gunzip.destroyed) return;
        // (a destroyed gunzip never drains: the reader stopped early)
        if (!gunzip.write(chunk))
          await new Promise((resolve) => {
            gunzip.once('drain', resolve);
            gunzip.once('close', resolve);
          });
      }
      gunzip.end();
    } catch (error) {
      gunzip.destroy(error instanceof Error ? error : new Error(String(error)));
    }
  })();
  try {
    for await (const chunk of gunzip) yield chunk as Buffer;
  } catch (error) {
    corrupt(
      `it is not a whole gzip stream (${error instanceof Error ? error.message : String(error)})`,
      error,
    );
  } finally {
    gunzip.destroy();
    await feed;
  }
}

/**
 * The lines of an export stream (gzip'd or plain), decoded as UTF-8, without their newline.
 * Throws `TENANTRY_ERR_TRANSFER_CORRUPT` for a damaged gzip stream or an absurdly long line.
 */
export async function* readLines(input: Readable | AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  for await (const chunk of maybeGunzip(input)) {
    pending += decoder.write(chunk);
    let start = 0;
    for (let at = pending.indexOf('\n'); at >= 0; at = pending.indexOf('\n', start)) {
      yield pending.slice(start, at);
      start = at + 1;
    }
    pending = pending.slice(start);
    if (pending.length > MAX_LINE) corrupt('a line is longer than 256 MB');
  }
  pending += decoder.end();
  if (pending.length > 0) yield pending;
}
