export { audit, formatReport, hasHighFindings } from './audit.js';
export type { AuditReport, Finding, Severity } from './types.js';
