import type { MigrationProgress } from './run-context.js';

/** Renders migration progress: a redrawn bar on a terminal, plain lines elsewhere (logs, CI). */
export class ProgressView {
  readonly #write: (text: string) => void;
  readonly #tty: boolean;
  readonly #width: number;
  readonly #started = Date.now();
  #lastLine = 0;
  #drawn = false;
  #lastTenth = -1;

  /**
   * `write` receives raw text (no newline added); `tty` selects the bar; `width` is the terminal
   * width (default 80).
   */
  constructor(write: (text: string) => void, tty: boolean, width = 80) {
    this.#write = write;
    this.#tty = tty;
    this.#width = Math.max(40, width);
  }

  /** Shows one progress event. */
  update(event: MigrationProgress): void {
    if (event.error !== undefined) this.#line(`✗ ${event.target ?? event.phase}: ${event.error}`);
    if (event.phase !== 'tenants') {
      if (event.error === undefined && event.target)
        this.#line(`${event.phase}: ${event.done}/${event.total} done`);
      return;
    }
    if (this.#tty) {
      this.#bar(event);
      return;
    }
    // plain: one line per tenth of the tenants (and the last), so a log of 10,000 tenants stays short
    const tenth = event.total === 0 ? 10 : Math.floor((event.done * 10) / event.total);
    if (tenth <= this.#lastTenth) return;
    this.#lastTenth = tenth;
    this.#line(
      `tenants: ${event.done}/${event.total} (${event.failed} failed) ${this.#eta(event)}`.trimEnd(),
    );
  }

  /** Ends the bar's line (call once the run is over). */
  finish(): void {
    if (this.#drawn) this.#write('\n');
    this.#drawn = false;
  }

  #eta(event: MigrationProgress): string {
    if (event.done === 0 || event.done === event.total) return '';
    const elapsed = (Date.now() - this.#started) / 1000;
    const left = (elapsed / event.done) * (event.total - event.done);
    return `eta ${left < 60 ? `${Math.ceil(left)}s` : `${Math.floor(left / 60)}m${Math.ceil(left % 60)}s`}`;
  }

  #bar(event: MigrationProgress): void {
    const now = Date.now();
    if (now - this.#lastLine < 80 && event.done !== event.total && event.error === undefined) return;
    this.#lastLine = now;
    const counts =
      `${event.done}/${event.total}${event.failed ? ` ✗${event.failed}` : ''} ${this.#eta(event)}`.trimEnd();
    const room = Math.max(10, this.#width - counts.length - 14);
    const filled = event.total === 0 ? room : Math.round((event.done / event.total) * room);
    this.#write(`\r\u001b[2Ktenants [${'█'.repeat(filled)}${'░'.repeat(room - filled)}] ${counts}`);
    this.#drawn = true;
  }

  #line(text: string): void {
    if (this.#drawn) this.#write('\r\u001b[2K');
    this.#drawn = false;
    this.#write(`${text}\n`);
  }
}
