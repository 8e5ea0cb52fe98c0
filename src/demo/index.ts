export { seedDemo } from './demo.js';
export type { DemoResult } from './demo.js';
