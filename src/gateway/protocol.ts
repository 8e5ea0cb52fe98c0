/**
 * PostgreSQL wire-protocol (v3) frames the gateway writes and the few fields it reads. Frames are
 * Buffers: a type byte, an int32 length that counts itself, then the body.
 */

/** Startup-phase request codes (the int32 after the length of an untyped packet). */
export const PROTOCOL_V3 = 196608;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

/** Authentication request codes (message `R`). */
export const AUTH_OK = 0;
export const AUTH_CLEARTEXT = 3;
export const AUTH_SASL = 10;
export const AUTH_SASL_CONTINUE = 11;
export const AUTH_SASL_FINAL = 12;

/** One frame of `type` around `body`. */
export function frame(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

/** A NUL-terminated UTF-8 string. */
export function cstring(value: string): Buffer {
  return Buffer.from(`${value}\0`, 'utf8');
}

/** Reads the NUL-terminated string at `offset`; answers it and the offset after the NUL. */
export function readCString(buffer: Buffer, offset: number): [string, number] {
  const end = buffer.indexOf(0, offset);
  if (end < 0) throw new ProtocolViolation('a string is not terminated');
  return [buffer.toString('utf8', offset, end), end + 1];
}

/** A client sent something the protocol does not allow: the connection is closed with 08P01. */
export class ProtocolViolation extends Error {
  override readonly name = 'ProtocolViolation';
}

/** ReadyForQuery with transaction status `I`, `T` or `E`. */
export function readyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return frame('Z', Buffer.from(status, 'latin1'));
}

/** Fields of an ErrorResponse or NoticeResponse. */
export interface ErrorFields {
  readonly severity: 'ERROR' | 'FATAL' | 'NOTICE' | 'WARNING';
  /** SQLSTATE, five characters. */
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

function fields(error: ErrorFields): Buffer {
  const parts = [
    `S${error.severity}\0`,
    `V${error.severity}\0`,
    `C${error.code}\0`,
    `M${error.message}\0`,
    error.detail === undefined ? '' : `D${error.detail}\0`,
    error.hint === undefined ? '' : `H${error.hint}\0`,
    '\0',
  ];
  return Buffer.from(parts.join(''), 'utf8');
}

/** An ErrorResponse (`E`). */
export function errorResponse(error: ErrorFields): Buffer {
  return frame('E', fields(error));
}

/** A NoticeResponse (`N`). */
export function noticeResponse(notice: ErrorFields): Buffer {
  return frame('N', fields(notice));
}

/** ParameterStatus (`S`). */
export function parameterStatus(name: string, value: string): Buffer {
  return frame('S', Buffer.concat([cstring(name), cstring(value)]));
}

/** BackendKeyData (`K`): the key a client quotes in a CancelRequest. */
export function backendKeyData(pid: number, secret: number): Buffer {
  const body = Buffer.allocUnsafe(8);
  body.writeInt32BE(pid, 0);
  body.writeInt32BE(secret, 4);
  return frame('K', body);
}

/** An Authentication request (`R`) with its code and payload. */
export function authentication(code: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const body = Buffer.allocUnsafe(4 + payload.length);
  body.writeInt32BE(code, 0);
  payload.copy(body, 4);
  return frame('R', body);
}

/** A simple Query (`Q`). */
export function query(sql: string): Buffer {
  return frame('Q', cstring(sql));
}

/** Parse (`P`) of `text` as statement `name` with raw parameter-type bytes (int16 count + oids). */
export function parse(name: string, text: string, types: Buffer): Buffer {
  return frame('P', Buffer.concat([cstring(name), cstring(text), types]));
}

/** Close (`C`) of prepared statement `name`. */
export function closeStatement(name: string): Buffer {
  return frame('C', Buffer.concat([Buffer.from('S', 'latin1'), cstring(name)]));
}

/** ParseComplete, BindComplete and CloseComplete, which carry no body. */
export const PARSE_COMPLETE = frame('1');
export const CLOSE_COMPLETE = frame('3');

/** A CancelRequest packet for a backend's key. */
export function cancelRequest(pid: number, secret: number): Buffer {
  const out = Buffer.allocUnsafe(16);
  out.writeInt32BE(16, 0);
  out.writeInt32BE(CANCEL_REQUEST, 4);
  out.writeInt32BE(pid, 8);
  out.writeInt32BE(secret, 12);
  return out;
}
