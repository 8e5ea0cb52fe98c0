/**
 * A wake-up call between a background loop and the events that give it work: `wait()` resolves
 * on the next `wake()` (or a wake that came since the last wait) or after `ms`.
 */
export class Waker {
  #woken = false;
  #resolve: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;

  /** Resolves on the next wake-up, or after `ms` when given; a pending wake-up resolves at once. */
  wait(ms?: number): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.#resolve = resolve;
      if (ms !== undefined) this.#timer = setTimeout(() => this.#fire(), ms);
    });
  }

  /** Wakes the waiting loop (or the next wait). */
  wake(): void {
    if (this.#resolve) this.#fire();
    else this.#woken = true;
  }

  #fire(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const resolve = this.#resolve;
    this.#resolve = undefined;
    this.#woken = false;
    resolve?.();
  }
}
